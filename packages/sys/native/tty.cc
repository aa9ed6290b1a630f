// @crtools/sys: a task's terminal, looked at through our own copy of its descriptor
// (pidfd_getfd): what the tty ioctls answer. Nothing is changed on it; the copy is closed.
#include "sys.h"

#include <asm/termbits.h>
#include <cerrno>
#include <cstring>
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

// ttyQueueRead(masterFd, slaveFd) -> { toMaster: Buffer, toSlave: Buffer } | { errno, syscall }:
// the bytes waiting to be read at each end of a pty pair (descriptors of ours), read — taken out
// of the terminal — as many as TIOCINQ counts at each end (the caller has made sure that is all
// of it: a slave in non-canonical mode, a master not in packet mode).
Napi::Value TtyQueueRead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fds[2] = {I32(info[0]), I32(info[1])};
  std::vector<uint8_t> got[2];
  for (int k = 0; k < 2; k++) {
    long n = IntIoctl(fds[k], TIOCINQ);
    if (n < 0) return SysErr(env, (int)-n, "ioctl");
    got[k].resize((size_t)n);
    uint8_t *buf = got[k].data();
    if (!Whole((size_t)n, [&](size_t at, size_t left) { return read(fds[k], buf + at, left); })) return SysErr(env, errno, "read");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("toMaster", Napi::Buffer<uint8_t>::Copy(env, got[0].data(), got[0].size()));
  o.Set("toSlave", Napi::Buffer<uint8_t>::Copy(env, got[1].data(), got[1].size()));
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

// all of b written at fd; false with errno set
bool WriteAt(int fd, const Napi::Buffer<uint8_t> &b) {
  const uint8_t *p = b.Data();
  return Whole(b.Length(), [&](size_t at, size_t left) { return write(fd, p + at, left); });
}

// ttyQueueWrite(masterFd, slaveFd, toMaster, toSlave) -> 0 | { errno, syscall }: bytes put back to
// wait at each end of a pty pair (descriptors of ours), unchanged: the slave's termios is made raw
// for the while (no input or output processing, no echo, no signals, non-canonical) so that what
// is written at one end arrives at the other as it is, each write waited for until it has
// arrived, then the termios set back. EPERM: locked termios bits kept the raw mode from being set.
Napi::Value TtyQueueWrite(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int master = I32(info[0]), slave = I32(info[1]);
  Napi::Buffer<uint8_t> toMaster = info[2].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> toSlave = info[3].As<Napi::Buffer<uint8_t>>();
  struct termios saved, raw, now;
  if (ioctl(slave, TCGETS, &saved) < 0) return SysErr(env, errno, "ioctl");
  raw = saved;
  raw.c_iflag = 0;
  raw.c_oflag = 0;
  raw.c_lflag = 0;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (ioctl(slave, TCSETS, &raw) < 0) return SysErr(env, errno, "ioctl");
  const char *failed = nullptr;
  int e = 0;
  if (ioctl(slave, TCGETS, &now) < 0) {
    failed = "ioctl", e = errno;
  } else if (now.c_iflag || now.c_oflag || now.c_lflag) {
    failed = "ioctl", e = EPERM;
  } else {
    long m0 = IntIoctl(master, TIOCINQ), s0 = IntIoctl(slave, TIOCINQ);
    if (m0 < 0 || s0 < 0) failed = "ioctl", e = (int)-(m0 < 0 ? m0 : s0);
    else if (!WriteAt(master, toSlave) || !WaitQueued(slave, s0 + (long)toSlave.Length())) failed = "write", e = errno;
    else if (!WriteAt(slave, toMaster) || !WaitQueued(master, m0 + (long)toMaster.Length())) failed = "write", e = errno;
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
