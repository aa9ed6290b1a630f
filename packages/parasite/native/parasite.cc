// Thin native layer of @crtools/parasite.
//
// Only what Node cannot do: ptrace requests, waitpid with a timeout,
// process_vm_readv/writev into caller-provided Buffers, mapping a shared fd,
// and (for tests) starting a process that is not a child of Node.
// Every function is synchronous and must be called from the JS main thread:
// a tracee belongs to the thread that seized it.
// Failures are returned as negative errno values; TypeScript names them.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <napi.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <cpuid.h>
#include <elf.h>
#include <fcntl.h>
#include <linux/ptrace.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

long sys_ptrace(long req, long pid, uint64_t addr, uint64_t data) {
  long r = syscall(SYS_ptrace, req, pid, addr, data);
  return r == -1 ? -errno : r;
}

uint64_t u64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return (uint64_t)v.As<Napi::Number>().Int64Value();
}

int i32(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

Napi::Value num(Napi::Env env, double d) { return Napi::Number::New(env, d); }

// seize(pid, options) -> 0 | -errno
Napi::Value Seize(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_SEIZE, i32(info[0]), 0, u64(info[1])));
}

Napi::Value Interrupt(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_INTERRUPT, i32(info[0]), 0, 0));
}

// detach(pid, sig) -> 0 | -errno
Napi::Value Detach(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_DETACH, i32(info[0]), 0, (uint64_t)i32(info[1])));
}

// cont(pid, sig) -> 0 | -errno
Napi::Value Cont(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_CONT, i32(info[0]), 0, (uint64_t)i32(info[1])));
}

// listen(pid) -> 0 | -errno (leave a group-stopped tracee stopped but notifiable)
Napi::Value Listen(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_LISTEN, i32(info[0]), 0, 0));
}

// wait(pid, timeoutMs) -> { pid, status } ; pid 0 = timed out, pid < 0 = -errno
Napi::Value Wait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pid = i32(info[0]);
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  long r;
  unsigned spins = 0;
  for (;;) {
    r = waitpid(pid, &status, __WALL | WNOHANG);
    if (r == -1) { r = -errno; if (r == -EINTR) continue; break; }
    if (r > 0) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (now.tv_sec - start.tv_sec) * 1e3 + (now.tv_nsec - start.tv_nsec) / 1e6;
    if (ms >= timeout) { r = 0; break; }
    if (++spins < 200) { sched_yield(); continue; }
    struct timespec ts = {0, 200000};
    nanosleep(&ts, nullptr);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", num(env, (double)r));
  o.Set("status", num(env, status));
  return o;
}

// getRegs(pid, buf[216]) -> 0 | -errno
Napi::Value GetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return num(info.Env(), -EINVAL);
  return num(info.Env(), sys_ptrace(PTRACE_GETREGS, i32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()));
}

Napi::Value SetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return num(info.Env(), -EINVAL);
  return num(info.Env(), sys_ptrace(PTRACE_SETREGS, i32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()));
}

// getRegset(pid, type, buf) -> bytes filled | -errno
Napi::Value GetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  long r = sys_ptrace(PTRACE_GETREGSET, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)&iov);
  return num(info.Env(), r < 0 ? (double)r : (double)iov.iov_len);
}

Napi::Value SetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  return num(info.Env(), sys_ptrace(PTRACE_SETREGSET, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)&iov));
}

// getSigmask(pid) -> bigint | -errno (number)
Napi::Value GetSigmask(const Napi::CallbackInfo &info) {
  uint64_t mask = 0;
  long r = sys_ptrace(PTRACE_GETSIGMASK, i32(info[0]), sizeof(mask), (uint64_t)(uintptr_t)&mask);
  if (r < 0) return num(info.Env(), r);
  return Napi::BigInt::New(info.Env(), mask);
}

// peekSiginfo(pid, shared, offset, buf) -> count of 128-byte siginfos | -errno
Napi::Value PeekSiginfo(const Napi::CallbackInfo &info) {
  auto b = info[3].As<Napi::Buffer<uint8_t>>();
  struct ptrace_peeksiginfo_args a;
  a.off = (uint64_t)i32(info[2]);
  a.flags = info[1].ToBoolean() ? PTRACE_PEEKSIGINFO_SHARED : 0;
  a.nr = (int32_t)(b.Length() / 128);
  return num(info.Env(), sys_ptrace(PTRACE_PEEKSIGINFO, i32(info[0]), (uint64_t)(uintptr_t)&a, (uint64_t)(uintptr_t)b.Data()));
}

// rseqConfig(pid, buf[32]) -> bytes | -errno
Napi::Value RseqConfig(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  return num(info.Env(), sys_ptrace(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, i32(info[0]), b.Length(), (uint64_t)(uintptr_t)b.Data()));
}

// peek(pid, addr) -> bigint word ; errors as { errno }
Napi::Value Peek(const Napi::CallbackInfo &info) {
  // the raw PEEKDATA syscall stores the word at *data (unlike the glibc wrapper)
  uint64_t word = 0;
  long r = sys_ptrace(PTRACE_PEEKDATA, i32(info[0]), u64(info[1]), (uint64_t)(uintptr_t)&word);
  if (r < 0) return num(info.Env(), r);
  return Napi::BigInt::New(info.Env(), word);
}

// poke(pid, addr, word) -> 0 | -errno
Napi::Value Poke(const Napi::CallbackInfo &info) {
  return num(info.Env(), sys_ptrace(PTRACE_POKEDATA, i32(info[0]), u64(info[1]), u64(info[2])));
}

// vmRead(pid, addr, buf, off, len) -> bytes | -errno
Napi::Value VmRead(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  size_t off = (size_t)u64(info[3]), len = (size_t)u64(info[4]);
  if (off > b.Length() || len > b.Length() - off) return num(info.Env(), -EINVAL);
  struct iovec local = {b.Data() + off, len};
  struct iovec remote = {(void *)(uintptr_t)u64(info[1]), len};
  long r = process_vm_readv(i32(info[0]), &local, 1, &remote, 1, 0);
  return num(info.Env(), r < 0 ? -errno : r);
}

Napi::Value VmWrite(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  size_t off = (size_t)u64(info[3]), len = (size_t)u64(info[4]);
  if (off > b.Length() || len > b.Length() - off) return num(info.Env(), -EINVAL);
  struct iovec local = {b.Data() + off, len};
  struct iovec remote = {(void *)(uintptr_t)u64(info[1]), len};
  long r = process_vm_writev(i32(info[0]), &local, 1, &remote, 1, 0);
  return num(info.Env(), r < 0 ? -errno : r);
}

// mapShared(fd, len) -> Buffer over a MAP_SHARED mapping (unmapped when collected) | -errno
Napi::Value MapShared(const Napi::CallbackInfo &info) {
  size_t len = (size_t)u64(info[1]);
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, i32(info[0]), 0);
  if (p == MAP_FAILED) return num(info.Env(), -errno);
  return Napi::Buffer<uint8_t>::New(info.Env(), (uint8_t *)p, len,
                                    [len](Napi::Env, uint8_t *d) { munmap(d, len); });
}

// spawnDetached(path, argv[]) -> pid of a grandchild running path (not a child of Node) | -errno
// The intermediate child forks, reports the grandchild pid through a pipe and exits;
// it runs only async-signal-safe calls.
Napi::Value SpawnDetached(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < arr.Length(); i++) args.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back((char *)a.c_str());
  argv.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return num(info.Env(), -errno);
  pid_t c = fork();
  if (c < 0) { int e = errno; close(p[0]); close(p[1]); return num(info.Env(), -e); }
  if (c == 0) {
    setsid();
    pid_t g = fork();
    if (g == 0) {
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); }
      sigset_t all; sigemptyset(&all); sigprocmask(SIG_SETMASK, &all, nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    int32_t v = g < 0 ? -errno : g;
    (void)!write(p[1], &v, sizeof(v));
    _exit(0);
  }
  close(p[1]);
  int32_t v = -EIO;
  ssize_t n;
  do n = read(p[0], &v, sizeof(v)); while (n < 0 && errno == EINTR);
  close(p[0]);
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
  return num(info.Env(), v);
}

// tgkill(tgid, tid, sig) -> 0 | -errno
Napi::Value Tgkill(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_tgkill, i32(info[0]), i32(info[1]), i32(info[2]));
  return num(info.Env(), r < 0 ? -errno : 0);
}

// getThreadArea(pid, index, buf[16]) -> 0 | -errno (struct user_desc)
Napi::Value GetThreadArea(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 16) return num(info.Env(), -EINVAL);
  return num(info.Env(), sys_ptrace(PTRACE_GET_THREAD_AREA, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)b.Data()));
}

// kcmp(pid1, pid2, type, idx1, idx2) -> 0 equal, 1/2 ordered, 3 not equal, -errno
Napi::Value Kcmp(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_kcmp, i32(info[0]), i32(info[1]), i32(info[2]), (unsigned long)u64(info[3]), (unsigned long)u64(info[4]));
  return num(info.Env(), r < 0 ? -errno : r);
}

// clockGettime(clockid) -> [sec, nsec] | -errno
Napi::Value ClockGettime(const Napi::CallbackInfo &info) {
  struct timespec ts;
  if (clock_gettime(i32(info[0]), &ts) < 0) return num(info.Env(), -errno);
  Napi::Array r = Napi::Array::New(info.Env(), 2);
  r.Set(0u, num(info.Env(), (double)ts.tv_sec));
  r.Set(1u, num(info.Env(), (double)ts.tv_nsec));
  return r;
}

// peekPipe(fd) -> { size, data } : the bytes buffered in the pipe behind fd, copied with tee(2)
// into a private pipe (nothing is consumed), and the pipe's capacity; or -errno.
Napi::Value PeekPipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = i32(info[0]);
  int size = fcntl(fd, F_GETPIPE_SZ);
  if (size < 0) return num(env, -errno);
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return num(env, -errno);
  if (fcntl(p[1], F_SETPIPE_SZ, size) < 0) { int e = errno; close(p[0]); close(p[1]); return num(env, -e); }
  ssize_t n = tee(fd, p[1], (size_t)size, SPLICE_F_NONBLOCK);
  if (n < 0 && errno == EAGAIN) n = 0;  // empty pipe
  if (n < 0) { int e = errno; close(p[0]); close(p[1]); return num(env, -e); }
  auto data = Napi::Buffer<uint8_t>::New(env, (size_t)n);
  size_t got = 0;
  while (got < (size_t)n) {
    ssize_t r = read(p[0], data.Data() + got, (size_t)n - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(p[0]);
  close(p[1]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", num(env, size));
  o.Set("data", data);
  return o;
}


// A descriptor of ours on the same open file as task pid's fd (pidfd_getfd), or -errno.
int TaskFdCopy(int pid, int tfd) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return -errno;
  int fd = (int)syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
  int e = errno;
  close(pidfd);
  return fd < 0 ? -e : fd;
}

// Zero a { nlmsghdr, *_diag_req } request and make it a SOCK_DIAG_BY_FAMILY dump.
template <typename R>
void DiagRequest(R &req) {
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
}

// Send a NETLINK_SOCK_DIAG dump request and hand each answer message to `each`; 0 or -errno.
template <typename F>
int DiagDump(const void *req, size_t reqLen, F each) {
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -errno;
  if (send(nl, req, reqLen, 0) < 0) { int e = errno; close(nl); return -e; }
  std::vector<char> buf(1 << 16);
  int rc = 0;
  for (bool done = false; !done;) {
    ssize_t len = recv(nl, buf.data(), buf.size(), 0);
    if (len < 0) { if (errno == EINTR) continue; rc = -errno; break; }
    if (len == 0) break;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf.data(); NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (h->nlmsg_type == NLMSG_ERROR) {
        int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        rc = -(e ? e : EIO);
        done = true;
        break;
      }
      each(h);
    }
  }
  close(nl);
  return rc;
}

// unixDiag() -> [{ ino, type, state, peer, name: Buffer | null, rqueue, wqueue, shutdown }] | -errno:
// every AF_UNIX socket of this network namespace, from NETLINK_SOCK_DIAG
Napi::Value UnixDiag(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct {
    struct nlmsghdr h;
    struct unix_diag_req r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = 0xffffffff;
  req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  int rc = DiagDump(&req, sizeof req, [&](struct nlmsghdr *h) {
    struct unix_diag_msg *m = (struct unix_diag_msg *)NLMSG_DATA(h);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ino", num(env, (double)m->udiag_ino));
    o.Set("type", num(env, m->udiag_type));
    o.Set("state", num(env, m->udiag_state));
    o.Set("peer", num(env, 0));
    o.Set("name", env.Null());
    o.Set("shutdown", num(env, 0));
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      void *d = RTA_DATA(a);
      size_t dl = RTA_PAYLOAD(a);
      switch (a->rta_type) {
        case UNIX_DIAG_NAME: o.Set("name", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)d, dl)); break;
        case UNIX_DIAG_PEER: o.Set("peer", num(env, (double)*(uint32_t *)d)); break;
        case UNIX_DIAG_RQLEN: {
          struct unix_diag_rqlen *q = (struct unix_diag_rqlen *)d;
          o.Set("rqueue", num(env, q->udiag_rqueue));
          o.Set("wqueue", num(env, q->udiag_wqueue));
          break;
        }
        case UNIX_DIAG_SHUTDOWN: o.Set("shutdown", num(env, *(uint8_t *)d)); break;
      }
    }
    out.Set(n++, o);
  });
  if (rc < 0) return num(env, rc);
  return out;
}

// sockQueue(pid, fd) -> { sndbuf, rcvbuf, packets: Buffer[], rights: bool } | -errno: a copy of the
// task's socket (pidfd_getfd), its buffer sizes and its receive queue read with MSG_PEEK from
// offset 0 (SO_PEEK_OFF), one Buffer per message (stream sockets: one for everything); the
// task's peek offset is put back. rights: a message carries descriptors (SCM_RIGHTS).
Napi::Value SockQueue(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = TaskFdCopy(i32(info[0]), i32(info[1]));
  if (fd < 0) return num(env, fd);
  int sndbuf = 0, rcvbuf = 0, oldoff = -1, type = 0;
  socklen_t sl = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
  sl = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &sl);
  sl = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
  sl = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &oldoff, &sl);
  int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0) { int e = errno; close(fd); return num(env, -e); }
  Napi::Array packets = Napi::Array::New(env);
  uint32_t n = 0;
  bool rights = false;
  std::vector<uint8_t> data((size_t)(rcvbuf > 0 ? rcvbuf : 1 << 16) * 2 + 4096);
  std::vector<char> ctl(4096);
  int err = 0;
  for (;;) {
    struct iovec iov = {data.data(), data.size()};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.data();
    mh.msg_controllen = ctl.size();
    ssize_t r = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        rights = true;
        // the peek took references on the files: close them
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int k = 0; k < cnt; k++) close(((int *)CMSG_DATA(c))[k]);
      }
    if (r == 0 && type == SOCK_STREAM) break;  // end of stream (peer shut down)
    packets.Set(n++, Napi::Buffer<uint8_t>::Copy(env, data.data(), (size_t)r));
    if (n > 1000000) break;
  }
  setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &oldoff, sizeof oldoff);
  close(fd);
  if (err) return num(env, -err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("sndbuf", num(env, sndbuf));
  o.Set("rcvbuf", num(env, rcvbuf));
  o.Set("packets", packets);
  o.Set("rights", Napi::Boolean::New(env, rights));
  return o;
}


// sockInfo(pid, fd) -> { domain, type, protocol, listening, reuseaddr, reuseport, v6only, sndbuf,
// rcvbuf, local: Buffer, peer: Buffer | null } | -errno, read from a pidfd_getfd copy of the socket
Napi::Value SockInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = TaskFdCopy(i32(info[0]), i32(info[1]));
  if (fd < 0) return num(env, fd);
  auto opt = [&](int level, int name) {
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
  };
  Napi::Object o = Napi::Object::New(env);
  int domain = opt(SOL_SOCKET, SO_DOMAIN);
  o.Set("domain", num(env, domain));
  o.Set("type", num(env, opt(SOL_SOCKET, SO_TYPE)));
  o.Set("protocol", num(env, opt(SOL_SOCKET, SO_PROTOCOL)));
  o.Set("listening", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_ACCEPTCONN) == 1));
  o.Set("reuseaddr", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_REUSEADDR) == 1));
  o.Set("reuseport", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_REUSEPORT) == 1));
  o.Set("v6only", Napi::Boolean::New(env, domain == AF_INET6 && opt(IPPROTO_IPV6, IPV6_V6ONLY) == 1));
  o.Set("sndbuf", num(env, opt(SOL_SOCKET, SO_SNDBUF)));
  o.Set("rcvbuf", num(env, opt(SOL_SOCKET, SO_RCVBUF)));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) o.Set("local", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&ss, sl));
  else o.Set("local", env.Null());
  sl = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) o.Set("peer", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&ss, sl));
  else o.Set("peer", env.Null());
  close(fd);
  return o;
}

// listenBacklog(family, ino) -> the listen backlog (max_ack_backlog) of the listening TCP socket
// with that inode, from NETLINK_SOCK_DIAG | -errno (-ENOENT: not found)
Napi::Value ListenBacklog(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int family = i32(info[0]);
  uint32_t ino = (uint32_t)info[1].As<Napi::Number>().Int64Value();
  struct {
    struct nlmsghdr h;
    struct inet_diag_req_v2 r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = (uint8_t)family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 1u << 10;  // TCP_LISTEN
  long found = -ENOENT;
  int rc = DiagDump(&req, sizeof req, [&](struct nlmsghdr *h) {
    struct inet_diag_msg *m = (struct inet_diag_msg *)NLMSG_DATA(h);
    if (m->idiag_inode == ino) found = m->idiag_wqueue;
  });
  return num(env, (double)(rc < 0 ? rc : found));
}

// pipe(size) -> [readFd, writeFd] (O_CLOEXEC, capacity set to size when possible) | -errno
Napi::Value Pipe(const Napi::CallbackInfo &info) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return num(info.Env(), -errno);
  int size = i32(info[0]);
  if (size > 0) fcntl(p[1], F_SETPIPE_SZ, size);
  Napi::Array r = Napi::Array::New(info.Env(), 3);
  r.Set(0u, num(info.Env(), p[0]));
  r.Set(1u, num(info.Env(), p[1]));
  r.Set(2u, num(info.Env(), fcntl(p[1], F_GETPIPE_SZ)));
  return r;
}

// spliceAll(fdIn, fdOut, len) -> bytes moved (all of len unless the pipe ran dry) | -errno
Napi::Value SpliceAll(const Napi::CallbackInfo &info) {
  int in = i32(info[0]), out = i32(info[1]);
  size_t len = (size_t)u64(info[2]), done = 0;
  while (done < len) {
    ssize_t n = splice(in, nullptr, out, nullptr, len - done, SPLICE_F_MOVE);
    if (n < 0) { if (errno == EINTR) continue; return num(info.Env(), -errno); }
    if (n == 0) break;
    done += (size_t)n;
  }
  return num(info.Env(), (double)done);
}

// closeFd(fd) -> 0 | -errno
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  return num(info.Env(), close(i32(info[0])) < 0 ? -errno : 0);
}

// cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx]
Napi::Value Cpuid(const Napi::CallbackInfo &info) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid_count((unsigned)i32(info[0]), (unsigned)i32(info[1]), a, b, c, d);
  Napi::Array r = Napi::Array::New(info.Env(), 4);
  r.Set(0u, num(info.Env(), a)); r.Set(1u, num(info.Env(), b));
  r.Set(2u, num(info.Env(), c)); r.Set(3u, num(info.Env(), d));
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("seize", Napi::Function::New(env, Seize));
  exports.Set("interrupt", Napi::Function::New(env, Interrupt));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("cont", Napi::Function::New(env, Cont));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getRegset", Napi::Function::New(env, GetRegset));
  exports.Set("setRegset", Napi::Function::New(env, SetRegset));
  exports.Set("getSigmask", Napi::Function::New(env, GetSigmask));
  exports.Set("peekSiginfo", Napi::Function::New(env, PeekSiginfo));
  exports.Set("rseqConfig", Napi::Function::New(env, RseqConfig));
  exports.Set("peek", Napi::Function::New(env, Peek));
  exports.Set("poke", Napi::Function::New(env, Poke));
  exports.Set("vmRead", Napi::Function::New(env, VmRead));
  exports.Set("vmWrite", Napi::Function::New(env, VmWrite));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("spawnDetached", Napi::Function::New(env, SpawnDetached));
  exports.Set("getThreadArea", Napi::Function::New(env, GetThreadArea));
  exports.Set("kcmp", Napi::Function::New(env, Kcmp));
  exports.Set("clockGettime", Napi::Function::New(env, ClockGettime));
  exports.Set("peekPipe", Napi::Function::New(env, PeekPipe));
  exports.Set("unixDiag", Napi::Function::New(env, UnixDiag));
  exports.Set("sockQueue", Napi::Function::New(env, SockQueue));
  exports.Set("sockInfo", Napi::Function::New(env, SockInfo));
  exports.Set("listenBacklog", Napi::Function::New(env, ListenBacklog));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("spliceAll", Napi::Function::New(env, SpliceAll));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("cpuid", Napi::Function::New(env, Cpuid));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill));
  return exports;
}

}  // namespace

NODE_API_MODULE(parasite, Init)
