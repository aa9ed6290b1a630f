"""An RPC client that dumps itself (a DUMP without pid), as libcriu's and pycriu's users do, and
checks after each answer that it finds itself as it was.

  selfdump-client.py CRIU IMGDIR OUT [leave-running]

CRIU: sk:PATH (a `criu service` socket, pycriu's use_sk) or a criu binary (use_binary: pycriu
starts `criu swrk` as a daemon, outside its own tree, for a dump without pid).

Before the dump it opens a file of its own (IMGDIR/../<name>.data, written, its offset moved),
fills 4 MiB of memory with a pattern, and appends {"phase": "dumping", "pid": ...} to OUT. After
each answer it appends one JSON line to OUT: the answer (success, restored), its pid, and
whether its memory, its file's content and offset and its working directory are as they were;
then it exits 0 (1 when the dump failed).
"""
import hashlib
import json
import os
import sys

import pycriu


def say(out, rec):
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")


def main():
    criu, imgdir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    leave_running = len(sys.argv) > 4 and sys.argv[4] == "leave-running"

    # state the restored client must find again
    data_path = os.path.join(os.path.dirname(os.path.abspath(out)), "client.data")
    fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"0123456789" * 100)
    os.lseek(fd, 321, os.SEEK_SET)
    pattern = bytearray(4 << 20)
    for i in range(0, len(pattern), 4096):
        pattern[i:i + 8] = (i * 2654435761 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    digest = hashlib.sha256(pattern).hexdigest()
    cwd = os.getcwd()
    pid = os.getpid()

    c = pycriu.criu()
    if criu.startswith("sk:"):
        c.use_sk(criu[3:])
    else:
        c.use_binary(criu)
    c.opts.images_dir_fd = os.open(imgdir, os.O_DIRECTORY)
    c.opts.log_file = "dump.log"
    c.opts.log_level = 4
    c.opts.leave_running = leave_running
    say(out, {"phase": "dumping", "pid": pid})
    try:
        r = c.dump()
        answer = {"success": True, "restored": bool(r.restored)}
    except pycriu.CRIUException as e:
        answer = {"success": False, "error": str(e)}

    pos = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, 0, os.SEEK_SET)
    content = os.read(fd, 2000)
    say(out, {
        "phase": "answered", **answer, "pid": os.getpid(), "same_pid": os.getpid() == pid,
        "memory_ok": hashlib.sha256(pattern).hexdigest() == digest,
        "file_ok": content == b"0123456789" * 100 and pos == 321,
        "cwd_ok": os.getcwd() == cwd,
    })
    sys.exit(0 if answer["success"] else 1)


main()
