// @crtools/sys: TCP connections through the kernel's repair mode (TCP_REPAIR): read an
// established connection's state and queues without a packet leaving, and make one again from
// that state (bound, "connected" without a handshake, queues filled), both on descriptors of ours.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// the kernel's struct tcp_repair_window (linux/tcp.h), spelled out: glibc's headers may lack it
struct RepairWindow {
  uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};

constexpr int kRepair = 19;        // TCP_REPAIR
constexpr int kRepairQueue = 20;   // TCP_REPAIR_QUEUE
constexpr int kQueueSeq = 21;      // TCP_QUEUE_SEQ
constexpr int kRepairOptions = 22; // TCP_REPAIR_OPTIONS
constexpr int kTimestamp = 24;     // TCP_TIMESTAMP
constexpr int kRepairWindow = 29;  // TCP_REPAIR_WINDOW
constexpr int kRecvQueue = 1, kSendQueue = 2;
constexpr int kOutqNsd = 0x894B;  // SIOCOUTQNSD: bytes of the send queue not sent yet

int SetInt(int fd, int level, int name, int v) { return setsockopt(fd, level, name, &v, sizeof v); }

// tcpi_state values and the sets of states whose queues hold a FIN (a state's bit: 1 << state)
enum { kEstablished = 1, kSynSent, kSynRecv, kFinWait1, kFinWait2, kTimeWait, kClose, kCloseWait, kLastAck, kListen, kClosing };
constexpr unsigned Bit(int s) { return 1u << s; }
// our FIN is in the send queue (it takes a sequence number, no byte)
constexpr unsigned kSndFin = Bit(kFinWait1) | Bit(kFinWait2) | Bit(kClosing) | Bit(kLastAck) | Bit(kClose);
// ... put there before the peer's FIN is received (our side closed first), or after it
constexpr unsigned kSndFinFirst = Bit(kFinWait1) | Bit(kFinWait2) | Bit(kClosing);
// ... and acknowledged by the peer
constexpr unsigned kSndFinAcked = Bit(kFinWait2) | Bit(kClose);
// the peer's FIN was received (it takes a sequence number at the end of the receive queue)
constexpr unsigned kRcvFin = Bit(kCloseWait) | Bit(kLastAck) | Bit(kClose) | Bit(kClosing);
constexpr unsigned kRcvFinAcked = Bit(kClose);

// TCP_INFO of the socket at fd (false: errno says why)
bool TcpInfo(int fd, struct tcp_info *ti) {
  socklen_t l = sizeof *ti;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l) == 0;
}

// tcpState(fd) -> tcpi_state of TCP_INFO | { errno, syscall }
Napi::Value TcpState(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct tcp_info ti;
  if (!TcpInfo(I32(info[0]), &ti)) return SysErr(env, errno, "getsockopt");
  return Num(env, ti.tcpi_state);
}

// tcpIdle(fd) -> { state, inq, events, peer } | { errno, syscall }: a TCP socket getpeername(2)
// calls not connected (CLOSE, SYN_SENT): its state, the bytes left to read (SIOCINQ), what
// poll(2) says of it at once (POLLRDHUP: its receiving side is shut; POLLERR: an error the task
// was not told yet) and the peer the kernel still has for it (SO_PEERNAME; null: none).
// Nothing is consumed: poll and SIOCINQ only look.
Napi::Value TcpIdle(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  struct tcp_info ti;
  if (!TcpInfo(fd, &ti)) return SysErr(env, errno, "getsockopt");
  int inq = 0;
  if (ioctl(fd, SIOCINQ, &inq) < 0) return SysErr(env, errno, "ioctl");
  struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };
  if (poll(&p, 1, 0) < 0) return SysErr(env, errno, "poll");
  struct sockaddr_storage peer;
  int domain = 0;
  socklen_t dl = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0) return SysErr(env, errno, "getsockopt");
  // SO_PEERNAME answers where getpeername(2) does not: a connection under way or one that ended
  // (asked for no more than the family's address: the kernel refuses a longer buffer, EINVAL)
  socklen_t pl = domain == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  bool hasPeer = getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &peer, &pl) == 0 && pl > 0;
  Napi::Object o = Napi::Object::New(env);
  o.Set("state", Num(env, ti.tcpi_state));
  o.Set("inq", Num(env, inq));
  o.Set("peer", hasPeer ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&peer, pl)) : env.Null());
  o.Set("events", Num(env, p.revents));
  return o;
}

// tcpRepair(fd, on) -> 0 | { errno, syscall }: TCP_REPAIR on (1) or off (0)
Napi::Value TcpRepair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (SetInt(I32(info[0]), IPPROTO_TCP, kRepair, I32(info[1])) < 0) return SysErr(env, errno, "setsockopt");
  return Num(env, 0);
}

// One queue's sequence number (TCP_QUEUE_SEQ) and its len bytes, peeked (repair mode).
bool PeekQueue(int fd, int queue, uint32_t len, uint32_t *seq, std::vector<uint8_t> &out, const char **failed) {
  if (SetInt(fd, IPPROTO_TCP, kRepairQueue, queue) < 0) return *failed = "setsockopt", false;
  socklen_t l = sizeof *seq;
  if (getsockopt(fd, IPPROTO_TCP, kQueueSeq, seq, &l) < 0) return *failed = "getsockopt", false;
  out.resize((size_t)len + 1);
  if (!len) return true;
  // one byte more than we expect: the queue must hold exactly len
  ssize_t r = recv(fd, out.data(), (size_t)len + 1, MSG_PEEK | MSG_DONTWAIT);
  if (r != (ssize_t)len) {
    if (r >= 0) errno = EAGAIN;
    return *failed = "recv", false;
  }
  out.resize(len);
  return true;
}

// tcpSave(fd) -> { state, inqLen, inqSeq, outqLen, outqSeq, unsqLen, mssClamp, optMask, sndWscale,
// rcvWscale, timestamp, window: [snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup] | null, inq, outq }
// | { errno, syscall }, of a socket already in repair mode (nothing is consumed)
Napi::Value TcpSave(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  struct tcp_info ti;
  if (!TcpInfo(fd, &ti)) return SysErr(env, errno, "getsockopt");
  int outq = 0, unsq = 0, inq = 0, mss = 0, ts = 0;
  if (ioctl(fd, SIOCOUTQ, &outq) < 0) return SysErr(env, errno, "ioctl");
  if (ioctl(fd, kOutqNsd, &unsq) < 0) return SysErr(env, errno, "ioctl");
  if (ioctl(fd, SIOCINQ, &inq) < 0) return SysErr(env, errno, "ioctl");
  // the send queue's FIN carries no byte: not counted (SIOCINQ already leaves the peer's out)
  if (Bit(ti.tcpi_state) & kSndFin) {
    if (outq) outq--;
    if (unsq) unsq--;
  }
  socklen_t l = sizeof mss;
  if (getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &l) < 0) return SysErr(env, errno, "getsockopt");
  if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
    l = sizeof ts;
    if (getsockopt(fd, IPPROTO_TCP, kTimestamp, &ts, &l) < 0) return SysErr(env, errno, "getsockopt");
  }
  RepairWindow w;
  l = sizeof w;
  bool haveWindow = getsockopt(fd, IPPROTO_TCP, kRepairWindow, &w, &l) == 0;
  if (!haveWindow && errno != ENOPROTOOPT) return SysErr(env, errno, "getsockopt");
  uint32_t inqSeq = 0, outqSeq = 0;
  std::vector<uint8_t> inqData, outqData;
  const char *failed = nullptr;
  if (!PeekQueue(fd, kRecvQueue, (uint32_t)inq, &inqSeq, inqData, &failed) || !PeekQueue(fd, kSendQueue, (uint32_t)outq, &outqSeq, outqData, &failed)) {
    int e = errno;
    SetInt(fd, IPPROTO_TCP, kRepairQueue, 0);
    return SysErr(env, e, failed);
  }
  SetInt(fd, IPPROTO_TCP, kRepairQueue, 0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("state", Num(env, ti.tcpi_state));
  o.Set("inqLen", Num(env, inq));
  o.Set("inqSeq", Num(env, inqSeq));
  o.Set("outqLen", Num(env, outq));
  o.Set("outqSeq", Num(env, outqSeq));
  o.Set("unsqLen", Num(env, unsq));
  o.Set("mssClamp", Num(env, mss));
  o.Set("optMask", Num(env, ti.tcpi_options));
  o.Set("sndWscale", Num(env, ti.tcpi_snd_wscale));
  o.Set("rcvWscale", Num(env, ti.tcpi_rcv_wscale));
  o.Set("timestamp", Num(env, (uint32_t)ts));
  if (haveWindow) {
    Napi::Array a = Napi::Array::New(env, 5);
    uint32_t v[5] = {w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup};
    for (uint32_t i = 0; i < 5; i++) a.Set(i, Num(env, v[i]));
    o.Set("window", a);
  } else {
    o.Set("window", env.Null());
  }
  o.Set("inq", Napi::Buffer<uint8_t>::Copy(env, inqData.data(), inq));
  o.Set("outq", Napi::Buffer<uint8_t>::Copy(env, outqData.data(), outq));
  return o;
}

// send() all of buf, halving the piece the kernel refuses (a repair-mode queue write allocates
// one linear buffer per call); false with errno set
// Write len bytes into the queue repair mode points at (or the ordinary send path), never
// blocking: the queue was the kernel's before and fits, but not always in the same buffer as
// the segments it is cut into now may cost more than the ones it held. A full buffer is grown
// (SO_SNDBUFFORCE, *grown set: the caller sets the dumped size back) rather than waited on:
// nothing drains it while the connection is locked.
bool SendAll(int fd, const uint8_t *buf, size_t len, bool *grown) {
  size_t chunk = len;
  while (len) {
    size_t n = chunk < len ? chunk : len;
    ssize_t r = send(fd, buf, n, MSG_DONTWAIT);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int cur = 0;
        socklen_t l = sizeof cur;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) < 0) return false;
        // the kernel doubles what it is given: giving the current size doubles it
        if (cur >= (1 << 28) || SetInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, cur) < 0) {
          errno = ENOBUFS;
          return false;
        }
        *grown = true;
        continue;
      }
      if (chunk > 1024) {
        chunk >>= 1;
        continue;
      }
      if (r == 0) errno = EIO;
      return false;
    }
    buf += r;
    len -= (size_t)r;
  }
  return true;
}

// The ones' complement sum of len bytes (16-bit big-endian words), added to sum.
uint32_t Sum16(const uint8_t *p, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  return sum;
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

// A segment of no data from `from` (the connection's peer) to `to` (our socket's address), with
// the sequence and acknowledgement numbers, flags and window given, written through a raw socket
// with the network lock's mark (so that a locked connection lets it in); false with errno set.
// A v4-mapped pair of IPv6 addresses goes as IPv4.
bool SendSegment(const uint8_t *from, const uint8_t *to, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win, int mark) {
  int family = ((const struct sockaddr *)to)->sa_family;
  uint8_t pkt[60];
  memset(pkt, 0, sizeof pkt);
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
  if (family == AF_INET) {
    auto *f = (const struct sockaddr_in *)from, *t = (const struct sockaddr_in *)to;
    memcpy(src, &f->sin_addr, 4), memcpy(dst, &t->sin_addr, 4), sport = f->sin_port, dport = t->sin_port;
  } else {
    auto *f = (const struct sockaddr_in6 *)from, *t = (const struct sockaddr_in6 *)to;
    sport = f->sin6_port, dport = t->sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&t->sin6_addr)) {
      family = AF_INET;
      memcpy(src, &f->sin6_addr.s6_addr[12], 4), memcpy(dst, &t->sin6_addr.s6_addr[12], 4);
    } else {
      memcpy(src, &f->sin6_addr, 16), memcpy(dst, &t->sin6_addr, 16);
    }
  }
  size_t alen = family == AF_INET ? 4 : 16, hlen = family == AF_INET ? 20 : 40;
  uint8_t *tcp = pkt + hlen;
  memcpy(tcp, &sport, 2), memcpy(tcp + 2, &dport, 2);
  uint32_t nseq = htonl(seq), nack = htonl(ack);
  memcpy(tcp + 4, &nseq, 4), memcpy(tcp + 8, &nack, 4);
  tcp[12] = 5 << 4;  // 20 bytes of header, no options
  tcp[13] = flags;
  tcp[14] = (uint8_t)(win >> 8), tcp[15] = (uint8_t)win;
  // the pseudo header: both addresses, the protocol, the segment's length
  uint32_t sum = Sum16(src, alen, 0);
  sum = Sum16(dst, alen, sum);
  sum += IPPROTO_TCP + 20;
  uint16_t csum = htons(Fold(Sum16(tcp, 20, sum)));
  memcpy(tcp + 16, &csum, 2);
  if (family == AF_INET) {
    pkt[0] = 0x45, pkt[3] = 40, pkt[8] = 64, pkt[9] = IPPROTO_TCP;  // the kernel fills in id and checksum
    memcpy(pkt + 12, src, 4), memcpy(pkt + 16, dst, 4);
  } else {
    pkt[0] = 0x60, pkt[5] = 20, pkt[6] = IPPROTO_TCP, pkt[7] = 64;
    memcpy(pkt + 8, src, 16), memcpy(pkt + 24, dst, 16);
  }
  // IPPROTO_RAW: we write the IP header ourselves (IPv4 and IPv6 alike)
  int r = SocketNsSocket(family, SOCK_RAW, IPPROTO_RAW);
  if (r < 0) return false;
  struct sockaddr_storage sa;
  memset(&sa, 0, sizeof sa);
  socklen_t salen;
  if (family == AF_INET) {
    auto *a = (struct sockaddr_in *)&sa;
    a->sin_family = AF_INET, memcpy(&a->sin_addr, dst, 4), salen = sizeof *a;
  } else {
    auto *a = (struct sockaddr_in6 *)&sa;
    a->sin6_family = AF_INET6, memcpy(&a->sin6_addr, dst, 16), salen = sizeof *a;
  }
  bool ok = SetInt(r, SOL_SOCKET, SO_MARK, mark) == 0 && sendto(r, pkt, hlen + 20, 0, (struct sockaddr *)&sa, salen) == (ssize_t)(hlen + 20);
  int e = errno;
  close(r);
  errno = e;
  return ok;
}

// Our FIN into the send queue: shutdown(SHUT_WR) in repair mode; with the send queue selected
// it counts as sent (the peer has it), otherwise it waits to be sent as an ordinary segment.
bool FinToSendQueue(int fd, bool sent) {
  if (sent && SetInt(fd, IPPROTO_TCP, kRepairQueue, kSendQueue) < 0) return false;
  if (shutdown(fd, SHUT_WR) < 0) return false;
  return !sent || SetInt(fd, IPPROTO_TCP, kRepairQueue, 0) == 0;
}

uint32_t Prop(const Napi::Object &o, const char *name) { return (uint32_t)o.Get(name).As<Napi::Number>().Int64Value(); }

// tcpRestore({ family, src, dst, v6only, reuseport, sndbuf, rcvbuf, inqSeq, inqLen, outqSeq, outqLen, unsqLen,
// mssClamp, optMask, sndWscale, rcvWscale, timestamp, window, inq, outq }) -> fd | { errno, syscall }:
// a TCP socket of ours (close-on-exec) made in repair mode into the established (or half-closed)
// connection described, or connecting again (SYN_SENT), left in repair mode (tcpRepair(fd, 0)
// takes it out)
Napi::Value TcpRestore(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  int family = (int)Prop(o, "family");
  Napi::Buffer<uint8_t> src = o.Get("src").As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> dst = o.Get("dst").As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> inq = o.Get("inq").As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> outq = o.Get("outq").As<Napi::Buffer<uint8_t>>();
  uint32_t inqLen = Prop(o, "inqLen"), outqLen = Prop(o, "outqLen"), unsqLen = Prop(o, "unsqLen");
  uint32_t optMask = Prop(o, "optMask");
  const char *failed = "socket";
  int fd = SocketNsSocket(family, SOCK_STREAM, IPPROTO_TCP);
  if (fd < 0) return SysErr(env, errno, failed);
  auto fail = [&](const char *sc) {
    int e = errno;
    close(fd);
    return SysErr(env, e, sc);
  };
  if (family == AF_INET6 && SetInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.Get("v6only").ToBoolean() ? 1 : 0) < 0) return fail("setsockopt");
  if (SetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) return fail("setsockopt");
  // the buffer sizes before the connection exists: the kernel sizes its window clamp from them
  uint32_t sndbuf = Prop(o, "sndbuf"), rcvbuf = Prop(o, "rcvbuf");
  if (sndbuf && SetInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)(sndbuf / 2)) < 0) return fail("setsockopt");
  if (rcvbuf && SetInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)(rcvbuf / 2)) < 0) return fail("setsockopt");
  if (o.Get("reuseport").ToBoolean() && SetInt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) return fail("setsockopt");
  if (SetInt(fd, IPPROTO_TCP, kRepair, 1) < 0) return fail("setsockopt");
  if (bind(fd, (struct sockaddr *)src.Data(), (socklen_t)src.Length()) < 0) return fail("bind");
  // the sequence numbers where each queue starts: the kernel moves them on as the queues fill
  // a FIN in either queue took a sequence number of its own: the queues are made without it, the
  // FIN goes in last (below)
  unsigned state = Bit((int)Prop(o, "state"));
  bool synSent = state == Bit(kSynSent);
  uint32_t inqSeq = Prop(o, "inqSeq") - (state & kRcvFin ? 1 : 0), outqSeq = Prop(o, "outqSeq") - (state & kSndFin ? 1 : 0);
  // a connect under way: its SYN took the sequence number before write_seq (the send queue's
  // start is the initial one, which the connect below keeps)
  uint32_t rseq = inqSeq - inqLen, sseq = outqSeq - outqLen - (synSent ? 1 : 0);
  if (SetInt(fd, IPPROTO_TCP, kRepairQueue, kRecvQueue) < 0 || setsockopt(fd, IPPROTO_TCP, kQueueSeq, &rseq, sizeof rseq) < 0) return fail("setsockopt");
  if (SetInt(fd, IPPROTO_TCP, kRepairQueue, kSendQueue) < 0 || setsockopt(fd, IPPROTO_TCP, kQueueSeq, &sseq, sizeof sseq) < 0) return fail("setsockopt");
  // No user MSS while connecting (as CRIU): the kernel then works the segment size out from
  // its 536-byte default and the clamp comes from TCP_REPAIR_OPTIONS below. A larger size given
  // here (the clamp, or the size the connection had) also bounds the MSS this end advertises and
  // the window the kernel offers is rounded to it: segments that no longer fit the peer's window
  // left connections crawling by zero-window probes after the restore, 200 ms per segment.
  if (synSent) {
    // A connect under way is made again as one (as CRIU): out of repair mode, a connect that
    // does not wait sends the SYN anew with the sequence number set above (the network lock
    // drops it until the restore lifts the lock; the SYN is retransmitted on its timer), then
    // back into repair mode. Its options come from the peer's answer: none to put back.
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return fail("fcntl");
    if (SetInt(fd, IPPROTO_TCP, kRepair, 0) < 0) return fail("setsockopt");
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return fail("fcntl");
    if (connect(fd, (struct sockaddr *)dst.Data(), (socklen_t)dst.Length()) < 0 && errno != EINPROGRESS) return fail("connect");
    if (fcntl(fd, F_SETFL, fl) < 0) return fail("fcntl");
    if (SetInt(fd, IPPROTO_TCP, kRepair, 1) < 0) return fail("setsockopt");
  } else {
    // in repair mode connect() sends nothing: the socket is ESTABLISHED at once
    if (connect(fd, (struct sockaddr *)dst.Data(), (socklen_t)dst.Length()) < 0) return fail("connect");
    struct tcp_repair_opt opts[4];
    int n = 0;
    if (optMask & TCPI_OPT_SACK) opts[n++] = {TCPOPT_SACK_PERMITTED, 0};
    if (optMask & TCPI_OPT_WSCALE) opts[n++] = {TCPOPT_WINDOW, Prop(o, "sndWscale") + (Prop(o, "rcvWscale") << 16)};
    if (optMask & TCPI_OPT_TIMESTAMPS) opts[n++] = {TCPOPT_TIMESTAMP, 0};
    opts[n++] = {TCPOPT_MAXSEG, Prop(o, "mssClamp")};
    if (setsockopt(fd, IPPROTO_TCP, kRepairOptions, opts, n * sizeof opts[0]) < 0) return fail("setsockopt");
  }
  if (optMask & TCPI_OPT_TIMESTAMPS) {
    uint32_t ts = Prop(o, "timestamp");
    if (setsockopt(fd, IPPROTO_TCP, kTimestamp, &ts, sizeof ts) < 0) return fail("setsockopt");
  }
  bool grown = false;
  if (inqLen) {
    if (SetInt(fd, IPPROTO_TCP, kRepairQueue, kRecvQueue) < 0) return fail("setsockopt");
    if (!SendAll(fd, inq.Data(), inqLen, &grown)) return fail("send");
  }
  // the send queue: what was sent and not acknowledged goes in as sent (repair mode); what was
  // never sent goes through the ordinary path (out of repair mode, then back in)
  uint32_t sent = outqLen - unsqLen;
  if (sent) {
    if (SetInt(fd, IPPROTO_TCP, kRepairQueue, kSendQueue) < 0) return fail("setsockopt");
    if (!SendAll(fd, outq.Data(), sent, &grown)) return fail("send");
  }
  if (unsqLen) {
    if (SetInt(fd, IPPROTO_TCP, kRepair, 0) < 0) return fail("setsockopt");
    if (!SendAll(fd, outq.Data() + sent, unsqLen, &grown)) return fail("send");
    if (SetInt(fd, IPPROTO_TCP, kRepair, 1) < 0) return fail("setsockopt");
  }
  // the send buffer back to the size the task had (the queue stays; the task waits for room, as it did)
  if (grown && sndbuf && SetInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)(sndbuf / 2)) < 0) return fail("setsockopt");
  uint16_t peerWin = 0xffff;
  Napi::Value wv = o.Get("window");
  if (wv.IsArray()) {
    Napi::Array a = wv.As<Napi::Array>();
    RepairWindow w;
    uint32_t *p = &w.snd_wl1;
    for (uint32_t i = 0; i < 5; i++) p[i] = (uint32_t)a.Get(i).As<Napi::Number>().Int64Value();
    // the window as it was before the peer's FIN, which moves rcv_wup on by one when it comes
    if (state & kRcvFin) w.rcv_wup--, w.rcv_wnd++;
    if (setsockopt(fd, IPPROTO_TCP, kRepairWindow, &w, sizeof w) < 0) return fail("setsockopt");
    // the window the segments we play as the peer advertise: the one the peer had (unscaled)
    uint32_t sw = w.snd_wnd >> ((optMask & TCPI_OPT_WSCALE) ? Prop(o, "sndWscale") : 0);
    peerWin = sw > 0xffff ? 0xffff : (uint16_t)sw;
  }
  SetInt(fd, IPPROTO_TCP, kRepairQueue, 0);
  // A half-closed connection: the FINs put back in the order they came. Ours by shutdown() in
  // repair mode (counted as sent when the peer acknowledged it); the peer's by a FIN segment
  // written as if from the peer (raw socket, past the network lock by its mark), which the
  // socket takes like any other; then, when the peer had acknowledged our FIN, its ACK the same way.
  int mark = (int)Prop(o, "mark");
  const uint8_t *me = src.Data(), *peer = dst.Data();
  if ((state & kSndFinFirst) && !FinToSendQueue(fd, state & kSndFinAcked)) return fail("shutdown");
  if ((state & kRcvFin) && !SendSegment(peer, me, inqSeq, outqSeq - outqLen, TH_FIN | TH_ACK, peerWin, mark)) return fail("sendto");
  if ((state & kSndFin) && !(state & kSndFinFirst) && !FinToSendQueue(fd, state & kSndFinAcked)) return fail("shutdown");
  if (state & kRcvFinAcked) inqSeq++;
  if (state & kSndFinAcked) {
    outqSeq++;
    if (!SendSegment(peer, me, inqSeq, outqSeq - outqLen, TH_ACK, peerWin, mark)) return fail("sendto");
  }
  // how the task shut it down (sk_shutdown: 1 receive, 2 send), as it was: a no-op where the
  // state says it already
  uint32_t how = Prop(o, "shutdown");
  if (how && shutdown(fd, (int)how - 1) < 0 && errno != ENOTCONN) return fail("shutdown");
  return Num(env, fd);
}

// setSockopt(fd, level, name, value) -> 0 | { errno, syscall }
Napi::Value SetSockopt(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> v = info[3].As<Napi::Buffer<uint8_t>>();
  if (setsockopt(I32(info[0]), I32(info[1]), I32(info[2]), v.Data(), (socklen_t)v.Length()) < 0) return SysErr(env, errno, "setsockopt");
  return Num(env, 0);
}

// setFileFlags(fd, flags) -> 0 | { errno, syscall }: F_SETFL
Napi::Value SetFileFlags(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (fcntl(I32(info[0]), F_SETFL, I32(info[1])) < 0) return SysErr(env, errno, "fcntl");
  return Num(env, 0);
}

}  // namespace

void crtools::sys::AddTcp(Napi::Object exports) {
  Export(exports, "tcpState", TcpState);
  Export(exports, "tcpIdle", TcpIdle);
  Export(exports, "tcpRepair", TcpRepair);
  Export(exports, "tcpSave", TcpSave);
  Export(exports, "tcpRestore", TcpRestore);
  Export(exports, "setSockopt", SetSockopt);
  Export(exports, "setFileFlags", SetFileFlags);
}
