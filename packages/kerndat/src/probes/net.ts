import { closeSync, openSync } from 'node:fs';
import type { KerndatPart, SockDiag } from '../types.js';
import { AF, NR, SOCK, closeFd, intBuf, raw, forkProbe } from '../sys.js';

function socket(family: number, type: number, proto = 0): number {
  const r = raw(NR.socket, family, type | SOCK.CLOEXEC, proto);
  return r.ret === -1n ? -1 : Number(r.ret);
}

function withSocket<T>(family: number, type: number, proto: number, fn: (fd: number) => T, none: T): T {
  const fd = socket(family, type, proto);
  if (fd < 0) return none;
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

const SOL_SOCKET = 1;
const SOL_TCP = 6;
const TCP_REPAIR = 19;
const TCP_TIMESTAMP = 24;
const TCP_REPAIR_WINDOW = 29;

function getsockopt(fd: number, level: number, opt: number, size: number): { errno: number; val: Buffer; len: number } {
  const val = Buffer.alloc(Math.max(size, 1));
  const len = intBuf(size);
  const r = raw(NR.getsockopt, fd, level, opt, size ? val : 0, len);
  return { errno: r.errno, val, len: len.readInt32LE(0) };
}

function setInt(fd: number, level: number, opt: number, v: number): number {
  return raw(NR.setsockopt, fd, level, opt, intBuf(v), 4).errno;
}

/** TCP repair mode (and TCP_TIMESTAMP, TCP_REPAIR_WINDOW); repair of a half-closed socket. */
export function probeTcp(): KerndatPart {
  const ipv6 = withSocket(AF.INET6, SOCK.STREAM, 6, () => true, false);
  const part: KerndatPart = { ipv6 };
  withSocket(
    AF.INET,
    SOCK.STREAM,
    6,
    (fd) => {
      part.has_tcp_repair = setInt(fd, SOL_TCP, TCP_REPAIR, 1) === 0 && getsockopt(fd, SOL_TCP, TCP_TIMESTAMP, 4).errno === 0;
      part.has_tcp_repair_window = part.has_tcp_repair && getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, 20).errno === 0;
      return true;
    },
    false,
  );
  part.has_tcp_repair ??= false;
  part.has_tcp_repair_window ??= false;
  // half-closed: a connected loopback socket after shutdown(SHUT_WR)
  const srv = socket(AF.INET, SOCK.STREAM, 6);
  const cli = socket(AF.INET, SOCK.STREAM, 6);
  try {
    const sin = Buffer.alloc(16);
    sin.writeUInt16LE(AF.INET, 0);
    sin.writeUInt32BE(0x7f000001, 4);
    const alen = intBuf(16);
    const ok =
      srv >= 0 &&
      cli >= 0 &&
      raw(NR.bind, srv, sin, 16).errno === 0 &&
      raw(NR.getsockname, srv, sin, alen).errno === 0 &&
      raw(NR.listen, srv, 1).errno === 0 &&
      raw(NR.connect, cli, sin, 16).errno === 0 &&
      raw(NR.shutdown, cli, 1).errno === 0;
    part.has_tcp_half_closed = ok && setInt(cli, SOL_TCP, TCP_REPAIR, 1) === 0;
  } finally {
    if (cli >= 0) closeFd(cli);
    if (srv >= 0) closeFd(srv);
  }
  return part;
}

/** Socket options and ioctls CRIU uses on other sockets. */
export function probeSockopts(): KerndatPart {
  const part: KerndatPart = {};
  part.has_sock_peek_off = withSocket(AF.UNIX, SOCK.DGRAM, 0, (fd) => getsockopt(fd, SOL_SOCKET, 42 /* SO_PEEK_OFF */, 4).errno === 0, false);
  part.has_so_gets = withSocket(
    AF.INET,
    SOCK.DGRAM,
    0,
    (fd) => {
      const g = getsockopt(fd, SOL_SOCKET, 26 /* SO_GET_FILTER */, 0);
      return g.errno === 0 && g.len === 0;
    },
    false,
  );
  part.has_sockopt_buf_lock = withSocket(AF.INET, SOCK.DGRAM, 0, (fd) => getsockopt(fd, SOL_SOCKET, 72 /* SO_BUF_LOCK */, 4).errno === 0, false);
  part.sk_ns = withSocket(
    AF.UNIX,
    SOCK.DGRAM,
    0,
    (fd) => {
      const r = raw(NR.ioctl, fd, 0x894c /* SIOCGSKNS */, 0);
      if (r.ret !== -1n) closeFd(r.ret);
      return r.ret !== -1n;
    },
    false,
  );
  part.sk_unix_file = withSocket(
    AF.UNIX,
    SOCK.STREAM,
    0,
    (fd) => {
      const r = raw(NR.ioctl, fd, 0x89e0 /* SIOCUNIXFILE */, 0);
      if (r.ret !== -1n) closeFd(r.ret);
      return r.ret !== -1n || r.errno === 2; // ENOENT: known, the socket is just unbound
    },
    false,
  );
  part.has_ipv6_freebind = withSocket(AF.INET6, SOCK.DGRAM, 0, (fd) => setInt(fd, 41 /* SOL_IPV6 */, 78 /* IPV6_FREEBIND */, 1) === 0, false);
  return part;
}

/** /dev/net/tun, and TUNGETDEVNETNS (tun devices in other netns). */
export function probeTun(): KerndatPart {
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', 'r+');
  } catch {
    return { has_tun: false, tun_ns: false };
  }
  try {
    const feat = Buffer.alloc(4);
    const has_tun = raw(NR.ioctl, fd, 0x800454cf /* TUNGETFEATURES */, feat).errno === 0;
    const ns = raw(NR.ioctl, fd, 0x54e3 /* TUNGETDEVNETNS */, 0);
    if (ns.ret !== -1n) closeFd(ns.ret);
    return { has_tun, tun_ns: ns.errno === 77 /* EBADFD: known, no device attached */ || ns.ret !== -1n };
  } finally {
    closeSync(fd);
  }
}

// ---- netlink

const NLMSG_ERROR = 2;
const pause = new Int32Array(new SharedArrayBuffer(4));
const NLMSG_DONE = 3;

function nlmsg(type: number, flags: number, payload: Buffer, seq: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + payload.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, payload]);
}

function rtattr(type: number, data: Buffer): Buffer {
  const len = 4 + data.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

/** Send one request; collect reply messages until DONE/ERROR. Returns the error (0 = fine) and the messages. */
function nlTalk(proto: number, req: Buffer): { error: number; msgs: Array<{ type: number; body: Buffer }> } {
  const fd = socket(AF.NETLINK, SOCK.RAW, proto);
  if (fd < 0) return { error: -1, msgs: [] };
  try {
    if (raw(NR.sendto, fd, req, req.length, 0, 0, 0).errno !== 0) return { error: -1, msgs: [] };
    const msgs: Array<{ type: number; body: Buffer }> = [];
    const buf = Buffer.alloc(65536);
    const deadline = Date.now() + 2000;
    for (;;) {
      const r = raw(NR.recvfrom, fd, buf, buf.length, 0x40 /* MSG_DONTWAIT */, 0, 0);
      if (r.ret === -1n) {
        if (r.errno === 11 && msgs.length > 0) return { error: 0, msgs }; // a plain (non-dump) reply is complete
        if (r.errno === 11 && Date.now() < deadline) {
          Atomics.wait(pause, 0, 0, 1);
          continue;
        }
        return { error: -r.errno, msgs };
      }
      let off = 0;
      const n = Number(r.ret);
      while (off + 16 <= n) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < 16) return { error: -1, msgs };
        const body = Buffer.from(buf.subarray(off + 16, off + len));
        if (type === NLMSG_ERROR) return { error: body.readInt32LE(0), msgs };
        if (type === NLMSG_DONE) return { error: 0, msgs };
        msgs.push({ type, body });
        off += (len + 3) & ~3;
      }
      if (n === 0) return { error: 0, msgs };
    }
  } finally {
    closeFd(fd);
  }
}

const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;

function diagDump(payload: Buffer): boolean {
  return nlTalk(4 /* NETLINK_SOCK_DIAG */, nlmsg(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, payload, 1)).error === 0;
}

function inetReq(family: number, protocol: number): Buffer {
  const b = Buffer.alloc(56);
  b[0] = family;
  b[1] = protocol;
  b.writeUInt32LE(0xffffffff, 4); // all states
  return b;
}

/** NETLINK_SOCK_DIAG dumps for each family CRIU collects sockets of. */
export function probeSockDiag(): KerndatPart {
  const unix = Buffer.alloc(24);
  unix[0] = AF.UNIX;
  unix.writeUInt32LE(0xffffffff, 4);
  unix.writeUInt32LE(0x1f, 12); // name, vfs, peer, icons, rqlen
  const packet = Buffer.alloc(20);
  packet[0] = AF.PACKET;
  const netlink = Buffer.alloc(20);
  netlink[0] = AF.NETLINK;
  netlink[1] = 255; // NDIAG_PROTO_ALL
  const d: SockDiag = {
    unix: diagDump(unix),
    tcp: diagDump(inetReq(AF.INET, 6)),
    udp: diagDump(inetReq(AF.INET, 17)),
    tcp6: diagDump(inetReq(AF.INET6, 6)),
    udp6: diagDump(inetReq(AF.INET6, 17)),
    raw: diagDump(inetReq(AF.INET, 255)),
    raw6: diagDump(inetReq(AF.INET6, 255)),
    packet: diagDump(packet),
    netlink: diagDump(netlink),
  };
  return { sock_diag: d };
}

const RTM_SETLINK = 19;
const RTM_GETNSID = 90;
const RTM_NEWNSID = 88;

/** IFLA_NEW_IFINDEX (restore a link at its ifindex) and RTM_GETNSID (peer netns ids). */
export function probeRtnetlink(): KerndatPart {
  // A negative new ifindex: ERANGE when the attribute is known, ENODEV (no such link) when not.
  const ifi = Buffer.alloc(16);
  const newIdx = Buffer.alloc(4);
  newIdx.writeInt32LE(-1);
  const req = nlmsg(
    RTM_SETLINK,
    NLM_F_REQUEST | 4 /* NLM_F_ACK */,
    Buffer.concat([ifi, rtattr(49 /* IFLA_NEW_IFINDEX */, newIdx), rtattr(3 /* IFLA_IFNAME */, Buffer.from('crtools-kd\0'))]),
    1,
  );
  const ni = nlTalk(0 /* NETLINK_ROUTE */, req);
  const part: KerndatPart = { has_newifindex: ni.error === -34 };
  let nsfd = -1;
  try {
    nsfd = openSync('/proc/self/ns/net', 'r');
    const fdAttr = Buffer.alloc(4);
    fdAttr.writeUInt32LE(nsfd);
    const gen = Buffer.alloc(4); // struct rtgenmsg, padded
    const r = nlTalk(0, nlmsg(RTM_GETNSID, NLM_F_REQUEST, Buffer.concat([gen, rtattr(3 /* NETNSA_FD */, fdAttr)]), 2));
    part.has_nsid = r.error === 0 && r.msgs.some((m) => m.type === RTM_NEWNSID);
  } catch {
    part.has_nsid = false;
  } finally {
    if (nsfd >= 0) closeSync(nsfd);
  }
  return part;
}

function inPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      closeSync(openSync(`${dir}/${bin}`, 'r'));
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** Userspace helpers for network locking: iptables with the legacy API; nft (crtools locks through the tool, with sets of concatenations). */
export function probeNetLockTools(sofar: { ipv6?: boolean }): KerndatPart {
  return {
    has_ipt_legacy: inPath('iptables-legacy') && (sofar.ipv6 === false || inPath('ip6tables-legacy')),
    has_nftables_concat: inPath('nft'),
  };
}

/** The link_nsid child's exit when RTM_NEWLINK cannot make a veth pair. */
const NO_VETH_EXIT = 14;

/**
 * IFLA_LINK_NETNSID: a veth whose peer is in another network namespace names
 * that namespace's id (CRIU's link_nsid). A forked child builds the pair inside
 * two fresh network namespaces, so nothing of it outlives the child.
 */
export function probeLinkNsid(): KerndatPart {
  const st = forkProbe('link_nsid', [], 5000);
  if (st.exited && (st.code === 0 || st.code === 1)) return { has_link_nsid: st.code === 0 };
  // no veth pair could be made (a kernel without veth): as for CRIU, the answer is no
  if (st.exited && st.code === NO_VETH_EXIT) return { has_link_nsid: false };
  throw new Error(`link_nsid test could not run (child ${st.timedOut ? 'timed out' : st.exited ? `exit ${st.code}` : `signal ${st.signal}`})`);
}
