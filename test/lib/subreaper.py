#!/usr/bin/env python3
"""Run a command (the end-to-end suite) as the child subreaper of everything it starts.

The tests kill a workload by dumping it and then restore it under the same pid, so they wait
for the dead workload to be reaped. Workloads are daemons (their parent exited), and so is a
tree restored with -d: their parent is whoever adopts orphans, by default pid 1. Some
machines' pid 1 reaps only now and then (seen: once every 1.5-2 s), which made each round trip
of the suite wait that long. Under this process (PR_SET_CHILD_SUBREAPER) the orphans of the
command's tree are adopted here and reaped at once. Exits with the command's exit status.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        print("usage: subreaper.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        # not fatal: the command runs, orphans go to pid 1 as without this wrapper
        print(f"subreaper.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        os.execvp(argv[0], argv)
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            print(f"subreaper.py: {argv[0]}: {e.strerror}", file=sys.stderr)
            os._exit(127)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child:
            # what the command left running is adopted by pid 1 once this exits
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
