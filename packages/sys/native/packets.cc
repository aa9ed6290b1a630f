// @crtools/sys: AF_UNIX SOCK_SEQPACKET sockets, the transport of CRIU's RPC: a connected pair,
// a listening socket and accept, one message per call in and out (with SCM_RIGHTS descriptors),
// the peer's credentials, and a one-shot readiness watch on the Node event loop (uv_poll), so
// that waiting for a message never blocks JavaScript.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// seqpacketPair() -> [fd, fd] | { errno, syscall }: a connected pair, both close-on-exec
Napi::Value SeqpacketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return SysErr(env, errno, "socketpair");
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Num(env, sv[0]));
  r.Set(1u, Num(env, sv[1]));
  return r;
}

// An AF_UNIX socket of `type` bound to path and listening (non-blocking: acceptConn never waits),
// or connected to it; close-on-exec. The seqpacket and stream variants below share it.
Napi::Value UnixListen(const Napi::CallbackInfo &info, int type) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return SysErr(env, ENAMETOOLONG, "bind");
  memcpy(sa.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return SysErr(env, errno, "socket");
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
  const char *sc = nullptr;
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) sc = "bind";
  else if (listen(fd, I32(info[1])) < 0) sc = "listen";
  if (sc) {
    int e = errno;
    close(fd);
    return SysErr(env, e, sc);
  }
  return Num(env, fd);
}

Napi::Value UnixConnect(const Napi::CallbackInfo &info, int type) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return SysErr(env, ENAMETOOLONG, "connect");
  memcpy(sa.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysErr(env, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path.size() + 1)) < 0) {
    int e = errno;
    close(fd);
    return SysErr(env, e, "connect");
  }
  return Num(env, fd);
}

// The descriptors a received message carried (SCM_RIGHTS), appended to fds from index n.
void TakeFds(Napi::Env env, struct msghdr &mh, Napi::Array &fds, uint32_t &n) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int k = 0; k < cnt; k++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
      fds.Set(n++, Num(env, got));
    }
  }
}

// recvmsg of up to len bytes into data with room for 32 descriptors, EINTR retried; the
// descriptors it carried appended to fds; *mflags: the message's flags (MSG_TRUNC...).
ssize_t RecvWithFds(Napi::Env env, int fd, void *data, size_t len, int flags, Napi::Array &fds, uint32_t &n, int *mflags) {
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 32)];
  struct iovec iov = {data, len};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof ctl;
  ssize_t r;
  do r = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r >= 0) TakeFds(env, mh, fds, n);
  if (mflags) *mflags = mh.msg_flags;
  return r;
}

// seqpacketListen(path, backlog) -> fd | { errno, syscall }: a SOCK_SEQPACKET socket bound to
// path (which must not exist) and listening; close-on-exec and non-blocking (acceptConn never waits)
Napi::Value SeqpacketListen(const Napi::CallbackInfo &info) { return UnixListen(info, SOCK_SEQPACKET); }

// seqpacketConnect(path) -> fd | { errno, syscall }
Napi::Value SeqpacketConnect(const Napi::CallbackInfo &info) { return UnixConnect(info, SOCK_SEQPACKET); }

// acceptConn(fd) -> fd | null (none waiting) | { errno, syscall }: close-on-exec
Napi::Value AcceptConn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int c = accept4(I32(info[0]), nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return SysErr(env, errno, "accept4");
  }
  // (the connection blocks on send; reads use MSG_DONTWAIT)
  return Num(env, c);
}

// recvPacket(fd) -> { data: Buffer, fds: number[] } | null (nothing queued) | { errno, syscall }:
// one whole message, never waiting (MSG_DONTWAIT). data of length 0: the peer closed (a
// zero-length message is not a request either). Received descriptors are close-on-exec.
Napi::Value RecvPacket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  ssize_t len;
  do len = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
  while (len < 0 && errno == EINTR);
  if (len < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return SysErr(env, errno, "recvmsg");
  }
  std::vector<uint8_t> buf((size_t)len + 1);
  Napi::Array fds = Napi::Array::New(env);
  uint32_t n = 0;
  int mflags = 0;
  ssize_t r = RecvWithFds(env, fd, buf.data(), buf.size(), MSG_DONTWAIT, fds, n, &mflags);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return SysErr(env, errno, "recvmsg");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), (size_t)r));
  o.Set("fds", fds);
  o.Set("truncated", Napi::Boolean::New(env, (mflags & MSG_TRUNC) != 0));
  return o;
}

// sendPacket(fd, data, fds) -> bytes sent | { errno, syscall }: one message, with the given
// descriptors (SCM_RIGHTS) when fds is not empty; MSG_NOSIGNAL (a closed peer is EPIPE)
Napi::Value SendPacket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  Napi::Buffer<uint8_t> data = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Array fds = info[2].As<Napi::Array>();
  uint32_t nfds = fds.Length();
  if (nfds > 32) return SysErr(env, EINVAL, "sendmsg");
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 32)];
  struct iovec iov = {data.Data(), data.Length()};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds) {
    memset(ctl, 0, sizeof ctl);
    mh.msg_control = ctl;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (uint32_t k = 0; k < nfds; k++) {
      int v = I32(fds.Get(k));
      memcpy(CMSG_DATA(c) + k * sizeof(int), &v, sizeof v);
    }
  }
  ssize_t r;
  do r = sendmsg(fd, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return SysErr(env, errno, "sendmsg");
  return Num(env, (double)r);
}

// streamConnect(path) -> fd | { errno, syscall }: an AF_UNIX SOCK_STREAM socket connected to
// path (close-on-exec, blocking)
Napi::Value StreamConnect(const Napi::CallbackInfo &info) { return UnixConnect(info, SOCK_STREAM); }

// streamListen(path, backlog) -> fd | { errno, syscall }: an AF_UNIX SOCK_STREAM socket bound to
// path (which must not exist) and listening; close-on-exec and non-blocking (acceptConn never waits)
Napi::Value StreamListen(const Napi::CallbackInfo &info) { return UnixListen(info, SOCK_STREAM); }

// recvExact(fd, len) -> { data, fds } | { errno, syscall }: waits for len bytes of a stream
// (fewer: the peer closed), with the descriptors that came with them (close-on-exec)
Napi::Value RecvExact(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  size_t want = (size_t)I32(info[1]), got = 0;
  std::vector<uint8_t> buf(want ? want : 1);
  Napi::Array fds = Napi::Array::New(env);
  uint32_t n = 0;
  while (got < want) {
    ssize_t r = RecvWithFds(env, fd, buf.data() + got, want - got, 0, fds, n, nullptr);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, -1);
        continue;
      }
      return SysErr(env, errno, "recvmsg");
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), got));
  o.Set("fds", fds);
  return o;
}

// peerCred(fd) -> { pid, uid, gid } | { errno, syscall }: SO_PEERCRED of a connected socket
Napi::Value PeerCred(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(I32(info[0]), SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return SysErr(env, errno, "getsockopt");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Num(env, cr.pid));
  o.Set("uid", Num(env, cr.uid));
  o.Set("gid", Num(env, cr.gid));
  return o;
}

// One pending readiness watch: a uv_poll on the Node loop, stopped and closed after its first event.
struct Watch {
  uv_poll_t poll;
  Napi::FunctionReference cb;
  napi_env env;
  uint32_t id;
};

std::map<uint32_t, Watch *> watches;
uint32_t nextWatch = 1;

void FreeWatch(uv_handle_t *h) { delete (Watch *)h->data; }

void EndWatch(Watch *w) {
  watches.erase(w->id);
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, FreeWatch);
}

void OnPoll(uv_poll_t *h, int status, int events) {
  Watch *w = (Watch *)h->data;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::Function fn = w->cb.Value();
  w->cb.Reset();
  EndWatch(w);
  // the callback (TypeScript) never throws; MakeCallback runs the microtasks after it
  fn.MakeCallback(env.Global(), {Num(env, status), Num(env, events)});
}

// watchReadable(fd, cb) -> id | { errno, syscall }: cb(status, events) once, on the event loop,
// when fd is readable or its peer hung up (status < 0: a libuv error). The watch keeps the
// loop alive until it fires or is cancelled.
Napi::Value WatchReadable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return SysErr(env, EINVAL, "uv_poll_init");
  Watch *w = new Watch();
  w->env = env;
  w->id = nextWatch++;
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, I32(info[0]));
  if (rc < 0) {
    delete w;
    return SysErr(env, -rc, "uv_poll_init");
  }
  rc = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, OnPoll);
  if (rc < 0) {
    uv_close((uv_handle_t *)&w->poll, FreeWatch);
    return SysErr(env, -rc, "uv_poll_start");
  }
  w->cb = Napi::Persistent(info[1].As<Napi::Function>());
  watches[w->id] = w;
  return Num(env, w->id);
}

// unwatch(id): cancel a watch that has not fired (nothing happens for one that has)
Napi::Value Unwatch(const Napi::CallbackInfo &info) {
  auto it = watches.find((uint32_t)I32(info[0]));
  if (it != watches.end()) {
    it->second->cb.Reset();
    EndWatch(it->second);
  }
  return info.Env().Undefined();
}

}  // namespace

void crtools::sys::AddPackets(Napi::Object exports) {
  Export(exports, "seqpacketPair", SeqpacketPair);
  Export(exports, "seqpacketListen", SeqpacketListen);
  Export(exports, "seqpacketConnect", SeqpacketConnect);
  Export(exports, "acceptConn", AcceptConn);
  Export(exports, "recvPacket", RecvPacket);
  Export(exports, "sendPacket", SendPacket);
  Export(exports, "peerCred", PeerCred);
  Export(exports, "streamConnect", StreamConnect);
  Export(exports, "streamListen", StreamListen);
  Export(exports, "recvExact", RecvExact);
  Export(exports, "watchReadable", WatchReadable);
  Export(exports, "unwatch", Unwatch);
}
