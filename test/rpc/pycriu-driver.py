"""Drive a criu through Debian's pycriu (criu.criu().use_binary, or use_sk for a CRIU given as
sk:PATH, a `criu service` socket) and print one JSON line.

  pycriu-driver.py CRIU check
  pycriu-driver.py CRIU version
  pycriu-driver.py CRIU dump DIR PID
  pycriu-driver.py CRIU restore DIR [sibling]
  pycriu-driver.py CRIU dump DIR PID external EXT        (opts.external: EXT, e.g. tty[RDEV:DEV])
  pycriu-driver.py CRIU dump DIR PID unixsk INO          (opts.ext_unix_sk, unix_sk_ino: INO)
  pycriu-driver.py CRIU restore DIR unixsk               (opts.ext_unix_sk)
  pycriu-driver.py CRIU restore DIR inherit PATH KEY     (PATH opened here, handed over: inherit_fd KEY)

Errors print {"ok": false, "error": "..."}; a sibling restore also reports the restored
root's parent (it should be this process) before exiting.
"""
import json
import os
import sys

import pycriu
import pycriu.rpc_pb2 as rpc


def main():
    binary, action = sys.argv[1], sys.argv[2]
    c = pycriu.criu()
    if binary.startswith("sk:"):
        c.use_sk(binary[3:])
    else:
        c.use_binary(binary)
    out = {"ok": True}
    try:
        if action == "check":
            c.check()
        elif action == "version":
            req = rpc.criu_req()
            req.type = rpc.VERSION
            r = c._send_req_and_recv_resp(req)
            out["major"], out["minor"] = r.version.major_number, r.version.minor_number
        elif action == "dump":
            fd = os.open(sys.argv[3], os.O_DIRECTORY)
            c.opts.images_dir_fd = fd
            c.opts.pid = int(sys.argv[4])
            c.opts.leave_running = False
            if len(sys.argv) > 6 and sys.argv[5] == "external":
                c.opts.external.append(sys.argv[6])
            if len(sys.argv) > 6 and sys.argv[5] == "unixsk":
                c.opts.ext_unix_sk = True
                c.opts.unix_sk_ino.add().inode = int(sys.argv[6])
            c.opts.log_file = "dump.log"
            c.opts.log_level = 4
            r = c.dump()
            out["restored"] = r.restored
        elif action == "restore":
            fd = os.open(sys.argv[3], os.O_DIRECTORY)
            c.opts.images_dir_fd = fd
            c.opts.log_file = "restore.log"
            c.opts.log_level = 4
            if len(sys.argv) > 4 and sys.argv[4] == "sibling":
                c.opts.rst_sibling = True
            if len(sys.argv) > 4 and sys.argv[4] == "unixsk":
                c.opts.ext_unix_sk = True
            if len(sys.argv) > 6 and sys.argv[4] == "inherit":
                # (swrk is forked and exec'ed by pycriu: an inheritable descriptor goes with it)
                tfd = os.open(sys.argv[5], os.O_RDWR | os.O_NOCTTY)
                os.set_inheritable(tfd, True)
                i = c.opts.inherit_fd.add()
                i.key, i.fd = sys.argv[6], tfd
            r = c.restore()
            out["pid"] = r.pid
            with open("/proc/%d/stat" % r.pid) as f:
                out["ppid"] = int(f.read().rsplit(")", 1)[1].split()[1])
            out["me"] = os.getpid()
        else:
            raise SystemExit("unknown action " + action)
    except pycriu.CRIUException as e:
        out = {"ok": False, "error": str(e), "errno": getattr(e, "errno", None)}
    print(json.dumps(out))


main()
