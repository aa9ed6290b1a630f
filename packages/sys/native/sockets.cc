// @crtools/sys: sockets: the NETLINK_SOCK_DIAG view of a network namespace (setSocketNamespace's), and a task's
// socket examined through our own copy of its descriptor (pidfd_getfd).
#include "sys.h"
#include "netlink.h"

#include <cerrno>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/sockios.h>
#include <cstddef>
#include <sys/syscall.h>
#include <climits>
#include <cstdio>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// A failed step: its errno and the system call that failed.
struct Failure {
  int err = 0;
  const char *syscall = nullptr;
  bool failed(int e, const char *sc) {
    err = e;
    syscall = sc;
    return false;
  }
};

// A descriptor of ours on the same open file as task pid's fd, or -1 with `f` set.
int TaskFdCopy(int pid, int tfd, Failure &f) {
  return crtools::sys::TaskFdCopy(pid, tfd, &f.err, &f.syscall);
}

// Zero a { nlmsghdr, *_diag_req } request and make it a SOCK_DIAG_BY_FAMILY dump.
template <typename R>
void DiagRequest(R &req) {
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
}

// Send a NETLINK_SOCK_DIAG dump request and hand each answer message to `each`; false with `f`
// set when a step fails (the kernel's own refusal is reported as sock_diag).
template <typename F>
bool DiagDump(const void *req, size_t reqLen, Failure &f, F each) {
  int nl = SocketNsSocket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
  if (nl < 0) return f.failed(errno, "socket");
  const char *sc = nullptr;
  int e = NetlinkRequest(nl, req, reqLen, false, "sock_diag", &sc, each);
  close(nl);
  return e ? f.failed(e, sc) : true;
}

// unixDiag() -> [{ ino, type, state, peer, name: Buffer | null, rqueue, wqueue, shutdown,
// vfsDev?, vfsIno?, icons? }] | { errno, syscall }: every AF_UNIX socket of this network namespace
// (vfs: the inode a path name is bound to; icons: a listener's queued connections, client inodes)
Napi::Value UnixDiag(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct {
    struct nlmsghdr h;
    struct unix_diag_req r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = 0xffffffff;
  req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS;
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  Failure f;
  bool ok = DiagDump(&req, sizeof req, f, [&](struct nlmsghdr *h) {
    struct unix_diag_msg *m = (struct unix_diag_msg *)NLMSG_DATA(h);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ino", Num(env, (double)m->udiag_ino));
    o.Set("type", Num(env, m->udiag_type));
    o.Set("state", Num(env, m->udiag_state));
    o.Set("peer", Num(env, 0));
    o.Set("name", env.Null());
    o.Set("shutdown", Num(env, 0));
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      void *d = RTA_DATA(a);
      size_t dl = RTA_PAYLOAD(a);
      switch (a->rta_type) {
        case UNIX_DIAG_NAME: o.Set("name", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)d, dl)); break;
        case UNIX_DIAG_PEER: o.Set("peer", Num(env, (double)*(uint32_t *)d)); break;
        case UNIX_DIAG_RQLEN: {
          struct unix_diag_rqlen *q = (struct unix_diag_rqlen *)d;
          o.Set("rqueue", Num(env, q->udiag_rqueue));
          o.Set("wqueue", Num(env, q->udiag_wqueue));
          break;
        }
        case UNIX_DIAG_SHUTDOWN: o.Set("shutdown", Num(env, *(uint8_t *)d)); break;
        case UNIX_DIAG_VFS: {
          struct unix_diag_vfs *v = (struct unix_diag_vfs *)d;
          o.Set("vfsDev", Num(env, v->udiag_vfs_dev));
          o.Set("vfsIno", Num(env, v->udiag_vfs_ino));
          break;
        }
        case UNIX_DIAG_ICONS: {
          Napi::Array icons = Napi::Array::New(env);
          for (size_t k = 0; k < dl / 4; k++) icons.Set((uint32_t)k, Num(env, ((uint32_t *)d)[k]));
          o.Set("icons", icons);
          break;
        }
      }
    }
    out.Set(n++, o);
  });
  if (!ok) return SysErr(env, f.err, f.syscall);
  return out;
}

// One packet ring's settings (PACKET_DIAG_RX_RING / TX_RING).
Napi::Object RingOf(Napi::Env env, const struct packet_diag_ring *r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("blockSize", Num(env, r->pdr_block_size));
  o.Set("blockNr", Num(env, r->pdr_block_nr));
  o.Set("frameSize", Num(env, r->pdr_frame_size));
  o.Set("frameNr", Num(env, r->pdr_frame_nr));
  o.Set("retireTmo", Num(env, r->pdr_retire_tmo));
  o.Set("sizeofPriv", Num(env, r->pdr_sizeof_priv));
  o.Set("features", Num(env, r->pdr_features));
  return o;
}

// packetDiag() -> [{ ino, type, protocol (as the socket keeps it: network byte order), ifindex,
// version, reserve, copyThresh, tstamp, flags, mclist: [{ index, count, type, addr }], fanout?,
// rxRing?, txRing? }] | { errno, syscall }: every AF_PACKET socket of this network namespace
Napi::Value PacketDiag(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct {
    struct nlmsghdr h;
    struct packet_diag_req r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = AF_PACKET;
  req.r.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG | PACKET_SHOW_FANOUT;
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  Failure f;
  bool ok = DiagDump(&req, sizeof req, f, [&](struct nlmsghdr *h) {
    struct packet_diag_msg *m = (struct packet_diag_msg *)NLMSG_DATA(h);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ino", Num(env, (double)m->pdiag_ino));
    o.Set("type", Num(env, m->pdiag_type));
    o.Set("protocol", Num(env, htons(m->pdiag_num)));
    Napi::Array mc = Napi::Array::New(env);
    o.Set("mclist", mc);
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      void *d = RTA_DATA(a);
      size_t dl = RTA_PAYLOAD(a);
      switch (a->rta_type) {
        case PACKET_DIAG_INFO: {
          struct packet_diag_info *i = (struct packet_diag_info *)d;
          o.Set("ifindex", Num(env, i->pdi_index));
          o.Set("version", Num(env, i->pdi_version));
          o.Set("reserve", Num(env, i->pdi_reserve));
          o.Set("copyThresh", Num(env, i->pdi_copy_thresh));
          o.Set("tstamp", Num(env, i->pdi_tstamp));
          o.Set("flags", Num(env, i->pdi_flags));
          break;
        }
        case PACKET_DIAG_MCLIST: {
          struct packet_diag_mclist *l = (struct packet_diag_mclist *)d;
          for (size_t k = 0; k < dl / sizeof *l; k++) {
            Napi::Object e = Napi::Object::New(env);
            e.Set("index", Num(env, l[k].pdmc_index));
            e.Set("count", Num(env, l[k].pdmc_count));
            e.Set("type", Num(env, l[k].pdmc_type));
            e.Set("addr", Napi::Buffer<uint8_t>::Copy(env, l[k].pdmc_addr, std::min<size_t>(l[k].pdmc_alen, sizeof l[k].pdmc_addr)));
            mc.Set((uint32_t)k, e);
          }
          break;
        }
        case PACKET_DIAG_RX_RING: o.Set("rxRing", RingOf(env, (struct packet_diag_ring *)d)); break;
        case PACKET_DIAG_TX_RING: o.Set("txRing", RingOf(env, (struct packet_diag_ring *)d)); break;
        case PACKET_DIAG_FANOUT: o.Set("fanout", Num(env, *(uint32_t *)d)); break;
      }
    }
    out.Set(n++, o);
  });
  if (!ok) return SysErr(env, f.err, f.syscall);
  return out;
}

// -> { sndbuf, rcvbuf, packets: Buffer[], addrs: (Buffer|null)[], fds: number[][],
// rights: bool, creds: bool } | { errno, syscall }: a copy of the task's socket, its buffer sizes
// and its receive queue read with MSG_PEEK from offset 0 (SO_PEEK_OFF), one Buffer per message
// (stream sockets: the kernel's segments, cut after each one that carries descriptors); the
// task's peek offset is put back. addrs: each message's sender address as recvmsg reports it
// (a sockaddr_un; null when the sender had no name or the socket is a stream). fds: the
// descriptors each message carries (SCM_RIGHTS), opened in this process: the caller closes them.
// creds: a message came with SCM_CREDENTIALS (the socket has SO_PASSCRED). eofAtZero (the
// socket is shut down for reading): an empty read of a datagram or seqpacket socket is its end,
// not a message of no bytes (a message of no bytes is seen once per pass of the peek offset,
// so the peek steps past it); zero: the peek stopped at such an end.
// sockQueue(pid, fd, eofAtZero?)
Napi::Value SockQueue(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Failure f;
  int fd = TaskFdCopy(I32(info[0]), I32(info[1]), f);
  if (fd < 0) return SysErr(env, f.err, f.syscall);
  bool eofAtZero = info.Length() > 2 && info[2].ToBoolean().Value();
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
  if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0) {
    int e = errno;
    close(fd);
    return SysErr(env, e, "setsockopt");
  }
  Napi::Array packets = Napi::Array::New(env);
  Napi::Array addrs = Napi::Array::New(env);
  Napi::Array fdsOut = Napi::Array::New(env);
  uint32_t n = 0;
  bool rights = false, creds = false, stopped = false;
  std::vector<uint8_t> data((size_t)(rcvbuf > 0 ? rcvbuf : 1 << 16) * 2 + 4096);
  std::vector<char> ctl(8192);
  int err = 0;
  for (;;) {
    struct iovec iov = {data.data(), data.size()};
    struct sockaddr_un from;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    memset(&from, 0, sizeof from);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_control = ctl.data();
    mh.msg_controllen = ctl.size();
    ssize_t r = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    Napi::Array mine = Napi::Array::New(env);
    uint32_t nf = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        rights = true;
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int k = 0; k < cnt; k++) mine.Set(nf++, Num(env, ((int *)CMSG_DATA(c))[k]));
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        creds = true;
      }
    }
    if (mh.msg_flags & MSG_CTRUNC) err = EMSGSIZE;
    if (r == 0 && (type == SOCK_STREAM || eofAtZero)) {
      // the end: a stream's, or that of a message socket shut down for reading (where a
      // message of no bytes cannot be told from it)
      if (type != SOCK_STREAM) stopped = true;
      for (uint32_t k = 0; k < nf; k++) close(mine.Get(k).As<Napi::Number>().Int32Value());
      break;
    }
    packets.Set(n, Napi::Buffer<uint8_t>::Copy(env, data.data(), (size_t)r));
    bool named = type != SOCK_STREAM && mh.msg_namelen > offsetof(struct sockaddr_un, sun_path);
    addrs.Set(n, named ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&from, mh.msg_namelen)) : env.Null());
    fdsOut.Set(n, mine);
    n++;
    if (err || n > 1000000) break;
  }
  setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &oldoff, sizeof oldoff);
  close(fd);
  if (err) {
    for (uint32_t i = 0; i < n; i++) {
      Napi::Array a = fdsOut.Get(i).As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); k++) close(a.Get(k).As<Napi::Number>().Int32Value());
    }
    return SysErr(env, err, "recvmsg");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("sndbuf", Num(env, sndbuf));
  o.Set("rcvbuf", Num(env, rcvbuf));
  o.Set("packets", packets);
  o.Set("addrs", addrs);
  o.Set("fds", fdsOut);
  o.Set("rights", Napi::Boolean::New(env, rights));
  o.Set("creds", Napi::Boolean::New(env, creds));
  o.Set("zero", Napi::Boolean::New(env, stopped));
  return o;
}

// unixSocketFile(pid, fd) -> { path, dev, ino } | { errno, syscall }: the file a task's bound
// unix socket was bound to, as the kernel holds it (SIOCUNIXFILE on a copy of the task's
// descriptor: an O_PATH descriptor of the socket's own inode, whatever is at its name now):
// its path as /proc/self/fd shows it (" (deleted)" at the end once unlinked) and its device
// (user-space encoding) and inode. Needs CAP_NET_ADMIN over the socket's network namespace.
Napi::Value UnixSocketFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Failure f;
  int fd = TaskFdCopy(I32(info[0]), I32(info[1]), f);
  if (fd < 0) return SysErr(env, f.err, f.syscall);
  int file = ioctl(fd, SIOCPROTOPRIVATE + 0 /* SIOCUNIXFILE */);
  int e = errno;
  close(fd);
  if (file < 0) return SysErr(env, e, "ioctl");
  char link[64], path[PATH_MAX + 1];
  snprintf(link, sizeof link, "/proc/self/fd/%d", file);
  ssize_t n = readlink(link, path, PATH_MAX);
  struct stat st;
  if (n < 0 || fstat(file, &st) < 0) {
    e = errno;
    close(file);
    return SysErr(env, e, n < 0 ? "readlink" : "fstat");
  }
  close(file);
  path[n] = 0;
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", Napi::String::New(env, path));
  o.Set("dev", Num(env, (double)st.st_dev));
  o.Set("ino", Num(env, (double)st.st_ino));
  return o;
}

// sockInfo(pid, fd) -> { domain, type, protocol, listening, reuseaddr, reuseport, v6only, sndbuf,
// rcvbuf, local: Buffer | null, peer: Buffer | null } | { errno, syscall }, read from a copy
// of the task's socket
Napi::Value SockInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Failure f;
  int fd = TaskFdCopy(I32(info[0]), I32(info[1]), f);
  if (fd < 0) return SysErr(env, f.err, f.syscall);
  auto opt = [&](int level, int name) {
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
  };
  Napi::Object o = Napi::Object::New(env);
  int domain = opt(SOL_SOCKET, SO_DOMAIN);
  o.Set("domain", Num(env, domain));
  o.Set("type", Num(env, opt(SOL_SOCKET, SO_TYPE)));
  o.Set("protocol", Num(env, opt(SOL_SOCKET, SO_PROTOCOL)));
  o.Set("listening", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_ACCEPTCONN) == 1));
  o.Set("reuseaddr", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_REUSEADDR) == 1));
  o.Set("reuseport", Napi::Boolean::New(env, opt(SOL_SOCKET, SO_REUSEPORT) == 1));
  o.Set("v6only", Napi::Boolean::New(env, domain == AF_INET6 && opt(IPPROTO_IPV6, IPV6_V6ONLY) == 1));
  o.Set("sndbuf", Num(env, opt(SOL_SOCKET, SO_SNDBUF)));
  o.Set("rcvbuf", Num(env, opt(SOL_SOCKET, SO_RCVBUF)));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) o.Set("local", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&ss, sl));
  else o.Set("local", env.Null());
  sl = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) o.Set("peer", Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&ss, sl));
  else o.Set("peer", env.Null());
  // the network namespace the socket was made in (SIOCGSKNS: a descriptor on it; 0: not told)
  int ns = ioctl(fd, SIOCGSKNS);
  struct stat st;
  if (ns >= 0 && fstat(ns, &st) == 0) o.Set("netns", Num(env, (double)st.st_ino));
  else o.Set("netns", Num(env, 0));
  if (ns >= 0) close(ns);
  close(fd);
  return o;
}

// listenQueues(family, ino) -> { backlog, pending }: the listen backlog (max_ack_backlog,
// idiag_wqueue) and the connections waiting in the accept queue (idiag_rqueue) of the listening
// TCP socket with that inode | { errno, syscall } (ENOENT: no such listening socket)
Napi::Value ListenQueues(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int family = I32(info[0]);
  uint32_t ino = (uint32_t)info[1].As<Napi::Number>().Int64Value();
  struct {
    struct nlmsghdr h;
    struct inet_diag_req_v2 r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = (uint8_t)family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 1u << 10;  // TCP_LISTEN
  long backlog = -1, pending = 0;
  Failure f;
  bool ok = DiagDump(&req, sizeof req, f, [&](struct nlmsghdr *h) {
    struct inet_diag_msg *m = (struct inet_diag_msg *)NLMSG_DATA(h);
    if (m->idiag_inode != ino) return;
    backlog = m->idiag_wqueue;
    pending = m->idiag_rqueue;
  });
  if (!ok) return SysErr(env, f.err, f.syscall);
  if (backlog < 0) return SysErr(env, ENOENT, "sock_diag");
  Napi::Object o = Napi::Object::New(env);
  o.Set("backlog", Num(env, (double)backlog));
  o.Set("pending", Num(env, (double)pending));
  return o;
}

// inetShutdown(family, protocol, ino) -> RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 of the UDP or UDP-lite
// socket with that inode (INET_DIAG_SHUTDOWN) | { errno, syscall } (ENOENT: none)
Napi::Value InetShutdown(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int family = I32(info[0]), protocol = I32(info[1]);
  uint32_t ino = (uint32_t)info[2].As<Napi::Number>().Int64Value();
  struct {
    struct nlmsghdr h;
    struct inet_diag_req_v2 r;
  } req;
  DiagRequest(req);
  req.r.sdiag_family = (uint8_t)family;
  req.r.sdiag_protocol = (uint8_t)protocol;
  req.r.idiag_states = ~0u;
  long found = -1;
  Failure f;
  bool ok = DiagDump(&req, sizeof req, f, [&](struct nlmsghdr *h) {
    struct inet_diag_msg *m = (struct inet_diag_msg *)NLMSG_DATA(h);
    if (m->idiag_inode != ino) return;
    found = 0;
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
      if (a->rta_type == INET_DIAG_SHUTDOWN) found = *(uint8_t *)RTA_DATA(a);
  });
  if (!ok) return SysErr(env, f.err, f.syscall);
  if (found < 0) return SysErr(env, ENOENT, "sock_diag");
  return Num(env, (double)found);
}

}  // namespace

void crtools::sys::AddSockets(Napi::Object exports) {
  Export(exports, "unixDiag", UnixDiag);
  Export(exports, "packetDiag", PacketDiag);
  Export(exports, "sockQueue", SockQueue);
  Export(exports, "sockInfo", SockInfo);
  Export(exports, "unixSocketFile", UnixSocketFile);
  Export(exports, "listenQueues", ListenQueues);
  Export(exports, "inetShutdown", InetShutdown);
}
