#!/usr/bin/env python3
"""Run a command (the end-to-end suite) as the child subreaper of everything it starts.

The tests kill a workload by dumping it and then restore it under the same pid, so they wait
for the dead workload to be reaped. Workloads are daemons (their parent exited), and so is a
tree restored with -d: their parent is whoever adopts orphans, by default pid 1. Some
machines' pid 1 reaps only now and then (seen: once every 1.5-2 s), which made each round trip
of the suite wait that long. Under this process (PR_SET_CHILD_SUBREAPER) the orphans of the
command's tree are adopted here and reaped at once. Exits with the command's exit status.

--deadline SECONDS: a run still going after that long is stuck somewhere (CI's whole job has a
time limit, and a test blocked in a synchronous call is beyond vitest's own timeouts): every
process of the tree is listed on stderr with its state, where it sleeps in the kernel and its
command line (which test's images directory a crtools command names), then all of them are
killed by pid and the run exits 124.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> list[int]:
    """Pids below root (children before grandchildren), read from /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in sorted(children.get(todo.pop(0), [])):
            out.append(c)
            todo.append(c)
    return out


def read(path: str, limit: int = 300) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(4096).replace(b"\0", b" ").decode(errors="replace").strip()[:limit]
    except OSError as e:
        return f"({e.strerror})"


def report_and_kill(deadline: int) -> None:
    me = os.getpid()
    pids = descendants(me)
    print(f"subreaper.py: still running after {deadline} s: {len(pids)} processes; each, then killed:", file=sys.stderr)
    for p in pids:
        stat = read(f"/proc/{p}/stat", 4096)
        fields = stat[stat.rfind(")") + 2:].split() if ")" in stat else ["?", "?"]
        stack = " < ".join(l.split(" ", 1)[-1].split("+")[0] for l in read(f"/proc/{p}/stack", 4096).splitlines()[:6])
        print(f"  pid {p} ppid {fields[1]} state {fields[0]} wchan {read(f'/proc/{p}/wchan')} stack [{stack}]\n"
              f"    {read(f'/proc/{p}/cmdline')}", file=sys.stderr)
    for p in reversed(pids):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def main() -> int:
    argv = sys.argv[1:]
    deadline = 0
    if len(argv) >= 2 and argv[0] == "--deadline":
        deadline = int(argv[1])
        argv = argv[2:]
    if not argv:
        print("usage: subreaper.py [--deadline SECONDS] COMMAND [ARG...]", file=sys.stderr)
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
    timed_out = []
    if deadline > 0:
        def on_alarm(_s, _f):
            timed_out.append(True)
            report_and_kill(deadline)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(deadline)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child:
            # what the command left running is adopted by pid 1 once this exits
            if timed_out:
                return 124
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
