"""Drive a criu through Debian's pycriu for incremental dumps and page servers; one JSON line out.

  migrate-driver.py CRIU pre-dump DIR PID [PARENT]        a PRE_DUMP round (PARENT: parent_img)
  migrate-driver.py CRIU dump DIR PID PARENT [ADDR PORT]  the final DUMP (track_mem; over a page server when ADDR PORT)
  migrate-driver.py CRIU page-server-chld DIR [PARENT]    PAGE_SERVER_CHLD (ps.port 0): prints its pid and port
  migrate-driver.py CRIU feature-check                    FEATURE_CHECK of mem_track

Errors print {"ok": false, "error": "..."}.
"""
import json
import os
import sys

import pycriu
import pycriu.rpc_pb2 as rpc


def main():
    binary, action = sys.argv[1], sys.argv[2]
    c = pycriu.criu()
    c.use_binary(binary)
    out = {"ok": True}
    try:
        if action == "feature-check":
            req = rpc.criu_req()
            req.type = rpc.FEATURE_CHECK
            req.features.mem_track = True
            r = c._send_req_and_recv_resp(req)
            out["mem_track"] = r.features.mem_track
        elif action in ("pre-dump", "dump"):
            c.opts.images_dir_fd = os.open(sys.argv[3], os.O_DIRECTORY)
            c.opts.pid = int(sys.argv[4])
            c.opts.log_file = action + ".log"
            c.opts.log_level = 4
            if len(sys.argv) > 5:
                c.opts.parent_img = sys.argv[5]
            if action == "pre-dump":
                c.pre_dump()
            else:
                c.opts.track_mem = True
                if len(sys.argv) > 7:
                    c.opts.ps.address = sys.argv[6]
                    c.opts.ps.port = int(sys.argv[7])
                out["restored"] = c.dump().restored
        elif action == "page-server-chld":
            c.opts.images_dir_fd = os.open(sys.argv[3], os.O_DIRECTORY)
            c.opts.log_file = "page-server.log"
            c.opts.log_level = 4
            c.opts.ps.port = 0
            if len(sys.argv) > 4:
                c.opts.parent_img = sys.argv[4]
            ps = c.page_server_chld()
            out["pid"], out["port"] = ps.pid, ps.port
        else:
            raise SystemExit("unknown action " + action)
    except Exception as e:  # pycriu raises CRIUException subclasses
        out = {"ok": False, "error": str(e)}
    print(json.dumps(out))


main()
