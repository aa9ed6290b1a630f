// @crtools/sys: network namespaces: a new one made and held by a descriptor, route netlink
// (rtnetlink) requests answered from inside a namespace, and the namespace the sockets this
// addon makes for sock_diag and TCP repair are made in (a socket belongs to the namespace it was
// made in, whichever thread uses it afterwards).
#include "sys.h"
#include "netlink.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// the namespace sockets are made in: empty for this thread's own
std::string g_socket_ns;

// setSocketNamespace(nsPath) -> undefined: "" goes back to this process's own namespace
Napi::Value SetSocketNamespace(const Napi::CallbackInfo &info) {
  g_socket_ns = info[0].As<Napi::String>().Utf8Value();
  return info.Env().Undefined();
}

// A new network namespace owned by the user namespace userFd holds: a thread cannot enter a user
// namespace (setns refuses a process of several threads), so a raw fork of this thread does it,
// unshares the network namespace there, tells its result on a pipe (0 or an errno, then the
// syscall's index) and waits while its namespace is opened; it ends as the other pipe closes.
Napi::Value NetnsCreateIn(Napi::Env env, int userFd) {
  int res[2], hold[2];
  if (pipe2(res, O_CLOEXEC) < 0) return SysErr(env, errno, "pipe2");
  if (pipe2(hold, O_CLOEXEC) < 0) {
    int e = errno;
    close(res[0]), close(res[1]);
    return SysErr(env, e, "pipe2");
  }
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    // only raw syscalls in the child: it shares nothing of Node's state that is safe to use
    int out[2] = { 0, 0 };
    syscall(SYS_close, res[0]);
    syscall(SYS_close, hold[1]);
    if (syscall(SYS_setns, userFd, CLONE_NEWUSER) < 0) out[0] = errno, out[1] = 0;
    else if (syscall(SYS_unshare, CLONE_NEWNET) < 0) out[0] = errno, out[1] = 1;
    syscall(SYS_write, res[1], out, sizeof(out));
    char b;
    if (!out[0]) syscall(SYS_read, hold[0], &b, 1);
    syscall(SYS_exit_group, 0);
  }
  int e = errno;
  close(res[1]), close(hold[0]);
  if (pid < 0) {
    close(res[0]), close(hold[1]);
    return SysErr(env, e, "clone");
  }
  int got[2] = { EIO, 2 };
  ssize_t n;
  while ((n = read(res[0], got, sizeof(got))) < 0 && errno == EINTR) {
  }
  if (n != (ssize_t)sizeof(got)) got[0] = EIO, got[1] = 2;
  int fd = -1;
  const char *failed = got[0] ? (got[1] == 0 ? "setns" : got[1] == 1 ? "unshare" : "read") : nullptr;
  e = got[0];
  if (!failed) {
    std::string f = "/proc/" + std::to_string(pid) + "/ns/net";
    fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) e = errno, failed = "open";
  }
  close(res[0]), close(hold[1]);
  int st;
  while (waitpid((pid_t)pid, &st, __WALL) < 0 && errno == EINTR) {
  }
  if (failed) return SysErr(env, e, failed);
  return Num(env, fd);
}

// netnsCreate(userFd?) -> fd | { errno, syscall }: a new network namespace, held by a descriptor
// of ours (close-on-exec); made by a thread that leaves this process's namespace and ends, or,
// with userFd, owned by the user namespace it holds (NetnsCreateIn)
Napi::Value NetnsCreate(const Napi::CallbackInfo &info) {
  if (info.Length() > 0 && info[0].IsNumber()) return NetnsCreateIn(info.Env(), info[0].As<Napi::Number>().Int32Value());
  int fd = -1, err = 0;
  const char *sc = nullptr;
  const char *failed = nullptr;
  int e = InNamespace("", 0, [&] {
    if (unshare(CLONE_NEWNET) < 0) {
      err = errno, sc = "unshare";
      return;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) err = errno, sc = "open";
  }, &failed);
  if (failed) return SysErr(info.Env(), e, failed);
  if (sc) return SysErr(info.Env(), err, sc);
  return Num(info.Env(), fd);
}

// rtnl(nsPath, request) -> Buffer[] | { errno, syscall }: one route netlink request sent from
// inside the namespace nsPath names ("" this process's); the answer's messages, each whole
// (nlmsghdr first), up to NLMSG_DONE for a dump or the acknowledgement (a refusal: its errno,
// syscall "rtnetlink")
Napi::Value Rtnl(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ns = info[0].As<Napi::String>().Utf8Value();
  Napi::Buffer<uint8_t> req = info[1].As<Napi::Buffer<uint8_t>>();
  int err = 0;
  const char *sc = nullptr;
  int nl = NetSocket(ns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, &err, &sc);
  if (nl < 0) return SysErr(env, err, sc);
  std::vector<std::vector<uint8_t>> out;
  bool dump = ((struct nlmsghdr *)req.Data())->nlmsg_flags & NLM_F_DUMP;
  err = NetlinkRequest(nl, req.Data(), req.Length(), !dump, "rtnetlink", &sc, [&out](struct nlmsghdr *h) {
    out.emplace_back((uint8_t *)h, (uint8_t *)h + h->nlmsg_len);
  });
  close(nl);
  if (sc) return SysErr(env, err, sc);
  Napi::Array a = Napi::Array::New(env, out.size());
  for (uint32_t i = 0; i < out.size(); i++) a.Set(i, Napi::Buffer<uint8_t>::Copy(env, out[i].data(), out[i].size()));
  return a;
}

}  // namespace

int crtools::sys::NetSocket(const std::string &nsPath, int domain, int type, int protocol, int *err, const char **failed) {
  if (nsPath.empty()) {
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) *err = errno, *failed = "socket";
    return fd;
  }
  int fd = -1, e = 0;
  const char *f = nullptr;
  int r = InNamespace(nsPath, CLONE_NEWNET, [&] {
    fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) e = errno;
  }, &f);
  if (f) {
    *err = r, *failed = f;
    return -1;
  }
  if (fd < 0) *err = e, *failed = "socket";
  return fd;
}

int crtools::sys::SocketNsSocket(int domain, int type, int protocol) {
  int err = 0;
  const char *failed = nullptr;
  int fd = NetSocket(g_socket_ns, domain, type, protocol, &err, &failed);
  if (fd < 0) errno = err;
  return fd;
}

void crtools::sys::AddNetns(Napi::Object exports) {
  Export(exports, "setSocketNamespace", SetSocketNamespace);
  Export(exports, "netnsCreate", NetnsCreate);
  Export(exports, "rtnl", Rtnl);
}
