// @crtools/sys: a task's open file, looked at through our own copy of its descriptor
// (pidfd_getfd): what fcntl, ioctl, fstatfs and getsockopt answer about the open file
// description. Nothing is changed on it; the copy is closed before returning.
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

constexpr int F_GETOWNER_UIDS_ = 17;  // not in every libc's <fcntl.h>

// fcntl(fd, cmd) or ioctl(fd, req, &int): the value, or -errno
long FcntlValue(int fd, int cmd) {
  long r = fcntl(fd, cmd);
  return r < 0 ? -errno : r;
}

long IoctlInt(int fd, unsigned long req) {
  int v = 0;
  return ioctl(fd, req, &v) < 0 ? -errno : v;
}

// Each (level, name, length) of q asked of socket fd: the bytes getsockopt wrote, the length
// alone for a length-0 query (SO_GET_FILTER: how many instructions), or -errno.
Napi::Array Sockopts(Napi::Env env, int fd, Napi::Array q) {
  Napi::Array out = Napi::Array::New(env);
  std::vector<uint8_t> buf(1 << 16);
  for (uint32_t i = 0; i + 2 < q.Length(); i += 3) {
    int level = I32(q.Get(i)), name = I32(q.Get(i + 1));
    socklen_t len = (socklen_t)I32(q.Get(i + 2));
    if (level == SOL_SOCKET && name == SO_GET_FILTER && (size_t)len * 8 > buf.size()) len = (socklen_t)(buf.size() / 8);
    if (len > buf.size()) len = (socklen_t)buf.size();
    bool lengthOnly = len == 0;
    memset(buf.data(), 0, len ? len : 1);
    if (getsockopt(fd, level, name, lengthOnly ? nullptr : buf.data(), &len) < 0)
      out.Set(i / 3, Num(env, -errno));
    else if (lengthOnly)
      out.Set(i / 3, Num(env, len));
    else if (level == SOL_SOCKET && name == SO_GET_FILTER)
      // its length is counted in instructions (struct sock_filter, 8 bytes), asked and answered
      out.Set(i / 3, Napi::Buffer<uint8_t>::Copy(env, buf.data(), std::min<size_t>((size_t)len * 8, buf.size())));
    else
      out.Set(i / 3, Napi::Buffer<uint8_t>::Copy(env, buf.data(), len));
  }
  return out;
}

// fileProbe(pid, fd, sockopts: number[] (level, name, length triples))
//   -> { fl, ownerType, ownerPid, ownerUid, ownerEuid, sig, lease, pipeSize, seals, nread, outq, events,
//        fsType, st_mode, sockopts: (Buffer | number)[] } | { errno, syscall }
// Each value that the kernel refuses for this kind of file is -errno. A socket option comes
// back as the bytes getsockopt wrote (a length-0 query: the length as a number, which is how
// SO_GET_FILTER says how many instructions a filter has), or -errno.
Napi::Value FileProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int e = 0;
  const char *failed = nullptr;
  int fd = TaskFdCopy(I32(info[0]), I32(info[1]), &e, &failed);
  if (fd < 0) return SysErr(env, e, failed);

  Napi::Object o = Napi::Object::New(env);
  o.Set("fl", Num(env, FcntlValue(fd, F_GETFL)));
  struct f_owner_ex own;
  memset(&own, 0, sizeof own);
  if (fcntl(fd, F_GETOWN_EX, &own) < 0) {
    o.Set("ownerType", Num(env, -errno));
    o.Set("ownerPid", Num(env, 0));
  } else {
    o.Set("ownerType", Num(env, own.type));
    o.Set("ownerPid", Num(env, own.pid));
  }
  // the real and effective uid recorded with the owner when it was set (F_GETOWNER_UIDS, only in
  // kernels built with CONFIG_CHECKPOINT_RESTORE: EINVAL elsewhere)
  uint32_t uids[2] = {0, 0};
  if (fcntl(fd, F_GETOWNER_UIDS_, uids) < 0) {
    o.Set("ownerUid", Num(env, -errno));
    o.Set("ownerEuid", Num(env, -errno));
  } else {
    o.Set("ownerUid", Num(env, uids[0]));
    o.Set("ownerEuid", Num(env, uids[1]));
  }
  o.Set("sig", Num(env, FcntlValue(fd, F_GETSIG)));
  o.Set("lease", Num(env, FcntlValue(fd, F_GETLEASE)));
  o.Set("pipeSize", Num(env, FcntlValue(fd, F_GETPIPE_SZ)));
  o.Set("seals", Num(env, FcntlValue(fd, F_GET_SEALS)));
  struct stat st;
  bool statted = fstat(fd, &st) == 0;
  o.Set("mode", Num(env, statted ? (long)st.st_mode : -errno));
  bool sock = statted && S_ISSOCK(st.st_mode), fifo = statted && S_ISFIFO(st.st_mode);
  // an anonymous inode (no file type: inotify, fanotify) tells the bytes of events waiting
  bool anon = statted && (st.st_mode & S_IFMT) == 0;
  o.Set("nread", Num(env, sock || fifo || anon ? IoctlInt(fd, FIONREAD) : -ENOTTY));
  o.Set("outq", Num(env, sock ? IoctlInt(fd, SIOCOUTQ) : -ENOTTY));
  // a socket's poll(2) events, asked without waiting (POLLRDHUP: its receiving side shut down;
  // POLLHUP: both sides)
  struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
  o.Set("events", Num(env, !sock ? -ENOTSOCK : poll(&p, 1, 0) < 0 ? -errno : p.revents));
  struct statfs sf;
  o.Set("fsType", Num(env, fstatfs(fd, &sf) < 0 ? -errno : (long)(unsigned long)sf.f_type));

  o.Set("sockopts", sock && info.Length() > 2 && info[2].IsArray() ? Sockopts(env, fd, info[2].As<Napi::Array>()) : Napi::Array::New(env));
  close(fd);
  return o;
}

// freshSocketProbe(domain, type, protocol, sockopts) -> (Buffer | number)[] | { errno, syscall }:
// the same socket option queries on a socket just made here: what a socket of that kind has
// by default (a dump compares the task's against it).
Napi::Value FreshSocketProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = socket(I32(info[0]), I32(info[1]) | SOCK_CLOEXEC, I32(info[2]));
  if (fd < 0) return SysErr(env, errno, "socket");
  Napi::Array out = Sockopts(env, fd, info[3].As<Napi::Array>());
  close(fd);
  return out;
}

// takeFd(pid, fd) -> our fd (close-on-exec) | { errno, syscall }: a descriptor of ours on the
// task's open file (pidfd_getfd), for the caller to keep
Napi::Value TakeFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int e = 0;
  const char *failed = nullptr;
  int fd = TaskFdCopy(I32(info[0]), I32(info[1]), &e, &failed);
  if (fd < 0) return SysErr(env, e, failed);
  return Num(env, fd);
}

}  // namespace

namespace crtools::sys {

int TaskFdCopy(int pid, int fd, int *err, const char **failed) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return *err = errno, *failed = "pidfd_open", -1;
  int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int e = errno;
  close(pidfd);
  if (copy < 0) return *err = e, *failed = "pidfd_getfd", -1;
  return copy;
}

void AddProbe(Napi::Object exports) {
  Export(exports, "takeFd", TakeFd);
  Export(exports, "fileProbe", FileProbe);
  Export(exports, "freshSocketProbe", FreshSocketProbe);
}

}  // namespace crtools::sys
