// @crtools/sys: a task's terminal, looked at through our own copy of its descriptor
// (pidfd_getfd): what the tty ioctls answer. Nothing is changed on it; the copy is closed.
#include "sys.h"

#include <asm/termbits.h>
#include <cerrno>
#include <cstring>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace

namespace crtools::sys {

void AddTty(Napi::Object exports) {
  Export(exports, "ttyProbe", TtyProbe);
}

}  // namespace crtools::sys
