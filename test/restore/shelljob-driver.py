"""CRIU's test/others/shell-job/run.py flow, with crtools' criu; one JSON document out.

  shelljob-driver.py NODE CRIU WORKDIR ROUNDS    (ROUNDS 0: one dump without -j, to be refused)

A job (this script, forked) leads its own session: setsid, the slave of a pty pair on 0/1/2 and
its controlling terminal (TIOCSCTTY); the master stays here, outside the tree. It is dumped with
`criu dump -j`, then restored with `criu restore -j` (not detached) by a process that leads a new
session whose controlling terminal is a NEW pty (made so through its master, as run.py does);
ROUNDS times, each round dumping what the previous one restored. The job answers each line it
reads on its terminal with what it finds of itself (session, group, foreground group, the device
of 0/1/2 and of /dev/tty); it exits 0 once the file "running" is gone. Round 1's restore runs with
standard input not a terminal (/dev/null), later rounds' with the new pty's slave.

Each process started is written to WORKDIR/pids as it starts, for the test to kill by pid.
"""
import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time

node, criu, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
running = os.path.join(work, "running")
out = {"ok": False, "rounds": []}


def note_pid(pid):
    with open(os.path.join(work, "pids"), "a") as f:
        f.write("%d\n" % pid)


def job(slave):
    """The job: its own session, the slave its terminal and 0/1/2; answers what it reads."""
    os.setsid()
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 1)
    os.close(slave)
    os.write(1, b"ready\n")
    while True:
        if not os.path.exists(running):
            os._exit(0)
        r, _, _ = select.select([0], [], [], 0.1)
        if not r:
            continue
        line = os.read(0, 200).decode(errors="replace").strip()
        try:
            os.close(os.open("/dev/tty", os.O_RDWR))
            devtty = 0
        except OSError as e:
            devtty = -e.errno
        ctty = int(open("/proc/self/stat").read().rsplit(") ", 1)[1].split()[4])
        ans = {
            "got": line, "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
            "fg": os.tcgetpgrp(0), "ctty": ctty, "devtty": devtty, "rdev": [os.fstat(fd).st_rdev for fd in (0, 1, 2)],
        }
        os.write(1, ("answer " + json.dumps(ans) + "\n").encode())


def ask(master, word, timeout=15.0):
    """Types a line at the master; returns the job's answer read there."""
    os.write(master, (word + "\n").encode())
    buf = b""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if not r:
            continue
        try:
            buf += os.read(master, 4096)
        except OSError:
            break
        for ln in buf.decode(errors="replace").splitlines():
            if ln.startswith("answer ") and ('"got": "%s"' % word) in ln:
                try:
                    return json.loads(ln[len("answer "):])
                except ValueError:
                    pass  # (the rest of the line is still on its way)
    raise RuntimeError("no answer to %r on the master (read %r)" % (word, buf[-300:]))


def wait_exit(pid, timeout):
    end = time.time() + timeout
    while time.time() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            return st
        time.sleep(0.05)
    raise RuntimeError("process %d did not end in %ds" % (pid, timeout))


def main():
    open(running, "w").close()
    m, s = pty.openpty()
    pid = os.fork()
    if pid == 0:
        os.close(m)
        try:
            job(s)
        finally:
            os._exit(1)
    note_pid(pid)
    os.close(s)
    out["pid"] = pid
    out["before"] = ask(m, "before")
    if rounds == 0:
        # without -j: refused by name, the job left running
        img = os.path.join(work, "img0")
        os.mkdir(img)
        with open(os.path.join(work, "dump0.err"), "w") as err:
            d = subprocess.run([node, criu, "dump", "-t", str(pid), "-D", img], stderr=err).returncode
        out["refused"] = {"dump": d, "stderr": open(os.path.join(work, "dump0.err")).read(), "after": ask(m, "after")}
        os.unlink(running)
        out["job_exit"] = os.waitstatus_to_exitcode(wait_exit(pid, 10))
        out["ok"] = True
        return
    restorer = None
    for n in range(1, rounds + 1):
        img = os.path.join(work, "img%d" % n)
        os.mkdir(img)
        d = os.spawnv(os.P_WAIT, node, [node, criu, "dump", "-j", "-t", str(pid), "-D", img, "-o", "dump.log", "-v4"])
        rnd = {"dump": d}
        out["rounds"].append(rnd)
        if d != 0:
            return
        # the tree is gone (killed by the dump): round 1's job is our child, later ones the
        # previous restore's root (that criu ends as its root was killed)
        if restorer is None:
            wait_exit(pid, 10)
        else:
            rnd["previous_restore"] = os.waitstatus_to_exitcode(wait_exit(restorer, 10))
        m2, s2 = pty.openpty()
        rnd["pts"] = os.fstat(s2).st_rdev
        cpid = os.fork()
        if cpid == 0:
            try:
                os.close(m)
                os.setsid()
                # as run.py: the new pty's master made the controlling terminal (its slave is)
                fcntl.ioctl(m2, termios.TIOCSCTTY, 1)
                # (both ends kept open here, as run.py's restoring child keeps them)
                os.dup2(os.open("/dev/null", os.O_RDONLY) if n == 1 else s2, 0)
                c = os.fork()
                if c == 0:
                    err = os.open(os.path.join(work, "restore%d.err" % n), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.dup2(err, 1)
                    os.dup2(err, 2)
                    os.execv(node, [node, criu, "restore", "-j", "-D", img, "-o", "restore.log", "-v4"])
                note_pid(c)
                _, st = os.waitpid(c, 0)
                with open(os.path.join(work, "restore%d.status" % n), "w") as f:
                    f.write("%d\n" % os.waitstatus_to_exitcode(st))
                os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
            finally:
                os._exit(99)
        note_pid(cpid)
        os.close(s2)
        os.close(m)
        m = m2
        restorer = cpid
        rnd["answer"] = ask(m, "round%d" % n)
        rnd["stat"] = open("/proc/%d/stat" % pid).read().rsplit(") ", 1)[1].split()
        rnd["fds"] = [os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in (0, 1, 2)]
    os.unlink(running)
    st = wait_exit(restorer, 15)
    out["restore_exit"] = os.waitstatus_to_exitcode(st)
    out["ok"] = True


try:
    main()
except Exception as e:  # noqa: BLE001 (reported to the test)
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
