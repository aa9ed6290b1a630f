// @crtools/sys: a task's terminal, looked at through our own copy of its descriptor
// (pidfd_getfd): what the tty ioctls answer. Nothing is changed on it; the copy is closed.
#include "sys.h"

#include <asm/termbits.h>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// ioctl(fd, req, &int): the value, or -errno
long IntIoctl(int fd, unsigned long req) {
  int v = 0;
  return ioctl(fd, req, &v) < 0 ? -errno : v;
}

// The kernel's struct termios (TCGETS / TIOCGLCKTRMIOS) as its bytes, or -errno.
Napi::Value Termios(Napi::Env env, int fd, unsigned long req) {
  struct termios t;
  memset(&t, 0, sizeof t);
  if (ioctl(fd, req, &t) < 0) return Num(env, -errno);
  return Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&t, sizeof t);
}

// ttyProbe(pid, fd) -> { rdev, dev, uid, gid, termios, termiosLocked, winsize: Buffer | -errno,
//   sid, pgrp, excl, pkt, lock, ptn, ttyDev, inq, outq } | { errno, syscall }
// sid and pgrp are what this process is told (a slave that is not our terminal: -ENOTTY);
// the master of a pair answers for its slave.
Napi::Value TtyProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int e = 0;
  const char *failed = nullptr;
  int fd = crtools::sys::TaskFdCopy(I32(info[0]), I32(info[1]), &e, &failed);
  if (fd < 0) return SysErr(env, e, failed);
  Napi::Object o = Napi::Object::New(env);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    e = errno;
    close(fd);
    return SysErr(env, e, "fstat");
  }
  o.Set("rdev", Num(env, (double)st.st_rdev));
  o.Set("dev", Num(env, (double)st.st_dev));
  o.Set("uid", Num(env, st.st_uid));
  o.Set("gid", Num(env, st.st_gid));
  o.Set("termios", Termios(env, fd, TCGETS));
  o.Set("termiosLocked", Termios(env, fd, TIOCGLCKTRMIOS));
  struct winsize w;
  memset(&w, 0, sizeof w);
  if (ioctl(fd, TIOCGWINSZ, &w) < 0)
    o.Set("winsize", Num(env, -errno));
  else
    o.Set("winsize", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&w, sizeof w));
  o.Set("sid", Num(env, IntIoctl(fd, TIOCGSID)));
  o.Set("pgrp", Num(env, IntIoctl(fd, TIOCGPGRP)));
  o.Set("excl", Num(env, IntIoctl(fd, TIOCGEXCL)));
  o.Set("pkt", Num(env, IntIoctl(fd, TIOCGPKT)));
  o.Set("lock", Num(env, IntIoctl(fd, TIOCGPTLCK)));
  o.Set("ptn", Num(env, IntIoctl(fd, TIOCGPTN)));
  unsigned int dev = 0;
  o.Set("ttyDev", Num(env, ioctl(fd, TIOCGDEV, &dev) < 0 ? -errno : (double)dev));
  o.Set("inq", Num(env, IntIoctl(fd, TIOCINQ)));
  o.Set("outq", Num(env, IntIoctl(fd, TIOCOUTQ)));
  close(fd);
  return o;
}

// All n bytes through op(done, left) (a read or a write of a terminal end, whose bytes are there:
// never waits), retried on EINTR; false with errno set.
template <typename Op>
bool Whole(size_t n, Op op) {
  for (size_t done = 0; done < n;) {
    ssize_t r = op(done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return false;
    }
    done += (size_t)r;
  }
  return true;
}

// a slave whose line discipline gathers lines (ICANON without EXTPROC: TIOCINQ counts whole lines only)
bool Canonical(const struct termios &t) { return (t.c_lflag & ICANON) && !(t.c_lflag & EXTPROC); }

// at most n bytes read from fd into out (appended), as many as there are (never waits); false with errno set
bool ReadCount(int fd, size_t n, std::vector<uint8_t> &out) {
  size_t at = out.size();
  out.resize(at + n);
  uint8_t *buf = out.data() + at;
  return Whole(n, [&](size_t done, size_t left) { return read(fd, buf + done, left); });
}

// ttyQueueRead(masterFd, slaveFd) -> { toMaster: Buffer, toSlave: Buffer, lines?: Buffer[] } |
// { errno, syscall }: the bytes waiting to be read at each end of a pty pair (descriptors of
// ours), read — taken out of the terminal. The master's: as many as TIOCINQ counts (the caller
// made sure it is not in packet mode). A slave in non-canonical mode: as many as TIOCINQ counts,
// in toSlave. A slave in canonical mode: each complete line by a read of its own (`lines`, as
// read: with its ending NL, EOL or EOL2, without an EOF; empty: a lone EOF), then the line being
// typed (toSlave), read with ICANON off for the while (its termios set back unchanged; the queue
// is empty by then, so the line discipline starts afresh as it would after a read of every line).
// EPERM: locked termios bits kept ICANON from being turned off.
Napi::Value TtyQueueRead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int master = I32(info[0]), slave = I32(info[1]);
  std::vector<uint8_t> toMaster, toSlave;
  Napi::Array lines = Napi::Array::New(env);
  long n = IntIoctl(master, TIOCINQ);
  if (n < 0) return SysErr(env, (int)-n, "ioctl");
  if (!ReadCount(master, (size_t)n, toMaster)) return SysErr(env, errno, "read");
  struct termios saved;
  if (ioctl(slave, TCGETS, &saved) < 0) return SysErr(env, errno, "ioctl");
  bool canon = Canonical(saved);
  if (canon) {
    // (the line being typed is read with ICANON off: refused before any line is taken if it is locked)
    struct termios locked;
    if (ioctl(slave, TIOCGLCKTRMIOS, &locked) < 0) return SysErr(env, errno, "ioctl");
    if (locked.c_lflag & ICANON) return SysErr(env, EPERM, "ioctl");
    // one read, one line (a lone EOF: none of TIOCINQ's bytes, but poll finds it); at most one
    // line per byte the line discipline holds (4096)
    std::vector<uint8_t> line(4096);
    for (uint32_t k = 0; k <= 4096; k++) {
      struct pollfd p = {slave, POLLIN, 0};
      long q = IntIoctl(slave, TIOCINQ);
      if (q < 0) return SysErr(env, (int)-q, "ioctl");
      if (q == 0) {
        int r = poll(&p, 1, 0);
        if (r < 0) return SysErr(env, errno, "poll");
        if (r == 0 || !(p.revents & POLLIN)) break;
      }
      ssize_t got = read(slave, line.data(), line.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return SysErr(env, errno, "read");
      lines.Set(lines.Length(), Napi::Buffer<uint8_t>::Copy(env, line.data(), (size_t)got));
    }
    struct termios raw = saved, now;
    raw.c_lflag &= ~(tcflag_t)ICANON;
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (ioctl(slave, TCSETS, &raw) < 0) return SysErr(env, errno, "ioctl");
    int e = 0;
    const char *failed = nullptr;
    if (ioctl(slave, TCGETS, &now) < 0) failed = "ioctl", e = errno;
    else if (now.c_lflag & ICANON) failed = "ioctl", e = EPERM;
    else if ((n = IntIoctl(slave, TIOCINQ)) < 0) failed = "ioctl", e = (int)-n;
    else if (!ReadCount(slave, (size_t)n, toSlave)) failed = "read", e = errno;
    if (ioctl(slave, TCSETS, &saved) < 0 && !failed) failed = "ioctl", e = errno;
    if (failed) return SysErr(env, e, failed);
  } else {
    n = IntIoctl(slave, TIOCINQ);
    if (n < 0) return SysErr(env, (int)-n, "ioctl");
    if (!ReadCount(slave, (size_t)n, toSlave)) return SysErr(env, errno, "read");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("toMaster", Napi::Buffer<uint8_t>::Copy(env, toMaster.data(), toMaster.size()));
  o.Set("toSlave", Napi::Buffer<uint8_t>::Copy(env, toSlave.data(), toSlave.size()));
  if (canon) o.Set("lines", lines);
  return o;
}

// wait (at most 2 s) until TIOCINQ at fd counts want bytes: what a write to the other end
// became once the kernel's worker passed it to this end's line discipline; false with errno set
bool WaitQueued(int fd, long want) {
  for (int i = 0; i < 2000; i++) {
    long n = IntIoctl(fd, TIOCINQ);
    if (n < 0) return errno = (int)-n, false;
    if (n == want) return true;
    usleep(1000);
  }
  errno = ETIMEDOUT;
  return false;
}

// all of p[0..n) written at fd; false with errno set
bool WriteAt(int fd, const uint8_t *p, size_t n) {
  return Whole(n, [&](size_t at, size_t left) { return write(fd, p + at, left); });
}

// The bytes a canonical line discipline keeps of a stream typed at it as the dump wrote it (see
// ttyQueueWrite; no editing character unmarked: the caller made sure): each but an LNEXT (with
// IEXTEN: the next is kept as it is) and an EOF (ends a line, kept as a mark no read returns).
long KeptOfTyped(const struct termios &t, const uint8_t *p, size_t n) {
  long kept = 0;
  bool lnext = false;
  for (size_t k = 0; k < n; k++) {
    uint8_t c = p[k];
    if (lnext) kept++, lnext = false;
    else if ((t.c_lflag & IEXTEN) && c == t.c_cc[VLNEXT]) lnext = true;
    else if (c != '\n' && c == t.c_cc[VEOF]) continue;
    else kept++;
  }
  return kept;
}

// ttyQueueWrite(masterFd, slaveFd, toMaster, toSlave) -> 0 | { errno, syscall }: bytes put back to
// wait at each end of a pty pair (descriptors of ours), each write waited for until it has
// arrived, the slave's termios set back after. A slave in non-canonical mode gets its bytes
// unchanged: its termios raw for the while (no input or output processing, no echo, no signals;
// EXTPROC as it is). A slave in canonical mode gets its lines typed again (toSlave as the dump
// wrote it: each line's bytes, LNEXT before any the line discipline would take as an editing,
// signal or line-ending character, then the character that ended it; the line being typed last),
// with its own control characters and ICANON, IEXTEN and IXON as they are, but no other input
// processing, no signals and echo on without output processing: the echo (a byte for each byte
// kept) tells when all of it has been through, and is read back off the master, which had
// nothing queued. The master's bytes are written at the slave with no output processing.
// EPERM: locked termios bits kept the temporary termios from being set.
Napi::Value TtyQueueWrite(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int master = I32(info[0]), slave = I32(info[1]);
  Napi::Buffer<uint8_t> toMaster = info[2].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> toSlave = info[3].As<Napi::Buffer<uint8_t>>();
  struct termios saved, tmp, now;
  if (ioctl(slave, TCGETS, &saved) < 0) return SysErr(env, errno, "ioctl");
  bool canon = Canonical(saved);
  tmp = saved;
  tmp.c_oflag = 0;
  if (canon) {
    tmp.c_iflag &= IXON;
    tmp.c_lflag = ICANON | ECHO | (saved.c_lflag & IEXTEN);
  } else {
    tmp.c_iflag = 0;
    tmp.c_lflag &= EXTPROC;
    tmp.c_cc[VMIN] = 1;
    tmp.c_cc[VTIME] = 0;
  }
  if (ioctl(slave, TCSETS, &tmp) < 0) return SysErr(env, errno, "ioctl");
  const char *failed = nullptr;
  int e = 0;
  if (ioctl(slave, TCGETS, &now) < 0) {
    failed = "ioctl", e = errno;
  } else if (now.c_iflag != tmp.c_iflag || now.c_oflag || now.c_lflag != tmp.c_lflag) {
    failed = "ioctl", e = EPERM;
  } else {
    long m0 = IntIoctl(master, TIOCINQ), s0 = IntIoctl(slave, TIOCINQ);
    if (m0 < 0 || s0 < 0) {
      failed = "ioctl", e = (int)-(m0 < 0 ? m0 : s0);
    } else if (canon) {
      long echo = KeptOfTyped(saved, toSlave.Data(), toSlave.Length());
      std::vector<uint8_t> drop;
      if (m0 != 0) failed = "ioctl", e = EBUSY;
      else if (!WriteAt(master, toSlave.Data(), toSlave.Length()) || !WaitQueued(master, echo)) failed = "write", e = errno;
      else if (!ReadCount(master, (size_t)echo, drop)) failed = "read", e = errno;
    } else if (!WriteAt(master, toSlave.Data(), toSlave.Length()) || !WaitQueued(slave, s0 + (long)toSlave.Length())) {
      failed = "write", e = errno;
    }
    if (!failed && (!WriteAt(slave, toMaster.Data(), toMaster.Length()) || !WaitQueued(master, (canon ? 0 : m0) + (long)toMaster.Length()))) failed = "write", e = errno;
  }
  if (ioctl(slave, TCSETS, &saved) < 0 && !failed) failed = "ioctl", e = errno;
  if (failed) return SysErr(env, e, failed);
  return Num(env, 0);
}

}  // namespace

namespace crtools::sys {

void AddTty(Napi::Object exports) {
  Export(exports, "ttyProbe", TtyProbe);
  Export(exports, "ttyQueueRead", TtyQueueRead);
  Export(exports, "ttyQueueWrite", TtyQueueWrite);
}

}  // namespace crtools::sys
