// @crtools/sys: tun/tap devices and their /dev/net/tun files: a file attached to a device
// (made first, at an index, when it is new) from inside a network namespace, what such a file
// says of itself and of its device, and the device's settings given again.
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#ifndef TUNSETIFINDEX
#define TUNSETIFINDEX _IOW('T', 218, unsigned int)
#endif
#ifndef TUNGETFILTER
#define TUNGETFILTER _IOR('T', 219, struct sock_fprog)
#endif

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// tunAttach(nsPath, name, flags, ifindex, openFlags) -> fd | { errno, syscall }: /dev/net/tun
// opened (openFlags' access mode and O_NONBLOCK, close-on-exec) inside the network namespace
// nsPath names ("" this thread's) and attached to device `name` with TUNSETIFF `flags` (a device
// that does not exist is made, at `ifindex` when not 0); with an empty name, left unattached
Napi::Value TunAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ns = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  int flags = I32(info[2]);
  unsigned int ifindex = (unsigned int)I32(info[3]);
  int oflags = I32(info[4]) & (O_ACCMODE | O_NONBLOCK);
  int fd = -1, err = 0;
  const char *sc = nullptr;
  auto work = [&] {
    fd = open("/dev/net/tun", oflags | O_CLOEXEC);
    if (fd < 0) {
      err = errno, sc = "open";
      return;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = (short)flags;
    if (name.empty()) return;
    if (ifindex && ioctl(fd, TUNSETIFINDEX, &ifindex) < 0) err = errno, sc = "TUNSETIFINDEX";
    else if (ioctl(fd, TUNSETIFF, &ifr) < 0) err = errno, sc = "TUNSETIFF";
    if (sc) close(fd), fd = -1;
  };
  const char *failed = nullptr;
  int e = 0;
  if (ns.empty()) work();
  else e = InNamespace(ns, CLONE_NEWNET, work, &failed);
  if (failed) return SysErr(env, e, failed);
  if (sc) return SysErr(env, err, sc);
  return Num(env, fd);
}

// tunInfo(fd) -> { name: string | null, flags, vnethdr, sndbuf, filter, netns } | { errno,
// syscall }: the device a /dev/net/tun file of ours is attached to (null: none), its TUNGETIFF
// flags, vnet header size, send buffer, the length of the socket filter a tap holds (0: none),
// and the inode of the network namespace the file was opened in (SIOCGSKNS)
Napi::Value TunInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  Napi::Object o = Napi::Object::New(env);
  int ns = ioctl(fd, SIOCGSKNS);
  if (ns < 0) return SysErr(env, errno, "SIOCGSKNS");
  struct stat st;
  int r = fstat(ns, &st);
  int e = errno;
  close(ns);
  if (r < 0) return SysErr(env, e, "fstat");
  o.Set("netns", Num(env, (double)st.st_ino));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    if (errno != EBADFD) return SysErr(env, errno, "TUNGETIFF");
    o.Set("name", env.Null());
    return o;
  }
  o.Set("name", Napi::String::New(env, ifr.ifr_name));
  o.Set("flags", Num(env, (unsigned short)ifr.ifr_flags));
  int v = 0;
  if (ioctl(fd, TUNGETVNETHDRSZ, &v) < 0) return SysErr(env, errno, "TUNGETVNETHDRSZ");
  o.Set("vnethdr", Num(env, v));
  if (ioctl(fd, TUNGETSNDBUF, &v) < 0) return SysErr(env, errno, "TUNGETSNDBUF");
  o.Set("sndbuf", Num(env, v));
  struct sock_fprog prog;
  memset(&prog, 0, sizeof prog);
  if ((ifr.ifr_flags & IFF_TAP) && ioctl(fd, TUNGETFILTER, &prog) < 0 && errno != EINVAL) return SysErr(env, errno, "TUNGETFILTER");
  o.Set("filter", Num(env, prog.len));
  return o;
}

// tunSet(fd, what, value) -> undefined | { errno, syscall }: one setting of the device a
// /dev/net/tun file of ours is attached to: "owner", "group", "persist" (by value), "sndbuf",
// "vnethdr" (through an int); or "detach": the file's queue of a multi-queue device detached
Napi::Value TunSet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  std::string what = info[1].As<Napi::String>().Utf8Value();
  int value = I32(info[2]);
  struct Op { const char *name; unsigned long req; bool byRef; const char *sc; };
  static const Op ops[] = {
    {"owner", TUNSETOWNER, false, "TUNSETOWNER"}, {"group", TUNSETGROUP, false, "TUNSETGROUP"},
    {"persist", TUNSETPERSIST, false, "TUNSETPERSIST"}, {"sndbuf", TUNSETSNDBUF, true, "TUNSETSNDBUF"},
    {"vnethdr", TUNSETVNETHDRSZ, true, "TUNSETVNETHDRSZ"},
  };
  if (what == "detach") {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_DETACH_QUEUE;
    if (ioctl(fd, TUNSETQUEUE, &ifr) < 0) return SysErr(env, errno, "TUNSETQUEUE");
    return env.Undefined();
  }
  for (const Op &op : ops) {
    if (what != op.name) continue;
    int r = op.byRef ? ioctl(fd, op.req, &value) : ioctl(fd, op.req, (unsigned long)(long)value);
    if (r < 0) return SysErr(env, errno, op.sc);
    return env.Undefined();
  }
  return SysErr(env, EINVAL, "tun");
}

}  // namespace

void crtools::sys::AddTun(Napi::Object exports) {
  Export(exports, "tunAttach", TunAttach);
  Export(exports, "tunInfo", TunInfo);
  Export(exports, "tunSet", TunSet);
}
