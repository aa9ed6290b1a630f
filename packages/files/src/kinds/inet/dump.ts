/**
 * IPv4/IPv6 sockets this dump can take: a listening TCP socket, a TCP socket that is not
 * connected, UDP and UDP-lite sockets (bound or not, connected or not), ping sockets
 * (SOCK_DGRAM with IPPROTO_ICMP/ICMPV6) and raw sockets, with the IP options CRIU's ip_opts_entry
 * keeps, and how a UDP socket was shut down. Refused by name: connected TCP (needs TCP_REPAIR),
 * datagrams waiting in a queue (CRIU 4.2 drops them; we do not lose them silently), any other
 * protocol. Not seen: whether a ping or raw socket was shut down (no sock_diag for ping sockets).
 */
import { inetShutdown, listenBacklog, type SocketInfo } from '@crtools/sys';
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import { socketNetRow, type FdRecord } from '@crtools/procfs';
import { fown, inodeOf, refuseFd, socketOf, unsupported, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';

/** the IP options ip_opts_entry has a field for (by family; raw ones only on raw sockets) */
const IP_KEPT = ['IP_FREEBIND', 'IP_PKTINFO', 'IP_TOS', 'IP_TTL'];
const IP6_KEPT = ['IPV6_FREEBIND', 'IPV6_RECVPKTINFO'];
const RAW_KEPT = ['IP_HDRINCL', 'IP_NODEFRAG', 'ICMP_FILTER'];
const RAW6_KEPT = ['IPV6_HDRINCL', 'ICMPV6_FILTER'];

/** What kind of IP socket this is, by type and protocol ('' when not one this dump takes). */
function ipKind(s: { domain: number; type: number; protocol: number }): string {
  if (s.type === SOCK_TYPE.STREAM && s.protocol === IPPROTO.TCP) return 'TCP';
  if (s.type === SOCK_TYPE.RAW) return 'raw';
  if (s.type !== SOCK_TYPE.DGRAM) return '';
  if (s.protocol === IPPROTO.UDP) return 'UDP';
  if (s.protocol === IPPROTO.UDPLITE) return 'UDP-lite';
  if (s.protocol === (s.domain === AF.INET ? IPPROTO.ICMP : IPPROTO.ICMPV6)) return 'ping';
  return '';
}

/** An IP socket's peer: its port and address as CRIU keeps them (address as raw 32-bit words). */
interface Endpoint {
  port: number;
  addr: number[];
}

/**
 * Checks an IP socket is one this dump takes (throws naming what is not); its peer, or null.
 * Datagram, ping and raw sockets are asked of their /proc/PID/net table (getpeername says
 * nothing of a ping or raw socket connected to port 0), with what their queues hold.
 */
function checkInet(pid: number, rec: FdRecord, s: SocketInfo): Endpoint | null {
  const kind = ipKind(s);
  if ((s.domain !== AF.INET && s.domain !== AF.INET6) || !kind || !s.local) throw unsupported(pid, rec.fd, rec.target);
  if (kind === 'TCP') {
    if (s.peer !== null) throw unsupported(pid, rec.fd, rec.target);
    return null;
  }
  const row = socketNetRow(pid, inodeOf(rec.target));
  if (!row || row.state === undefined) throw refuseFd(pid, rec.fd, `${kind} socket not found in /proc/${pid}/net: its state cannot be read`, rec.target);
  // datagrams (or raw packets) that wait to be read or sent would be lost
  if (row.receive > 0) throw refuseFd(pid, rec.fd, `${kind} socket with data queued to be read (${row.receive} bytes of receive buffer): not carried`, rec.target);
  if (row.send > 0) throw refuseFd(pid, rec.fd, `${kind} socket with data queued to be sent (${row.send} bytes of send buffer): not carried`, rec.target);
  if (row.state === TCP_STATE.CLOSE) return null;
  if (row.state !== TCP_STATE.ESTABLISHED || !row.remote) throw refuseFd(pid, rec.fd, `${kind} socket in state ${row.state}: not supported`, rec.target);
  return { port: row.remote.port, addr: row.remote.words };
}

/** A sockaddr_in/in6's port and address as CRIU keeps them (address as raw 32-bit words). */
function sockaddrParts(sa: Buffer): { port: number; addr: number[] } {
  const port = sa.readUInt16BE(2);
  if (sa.readUInt16LE(0) === AF.INET) return { port, addr: [sa.readUInt32LE(4)] };
  return { port, addr: [0, 1, 2, 3].map((i) => sa.readUInt32LE(8 + 4 * i)) };
}

/** ip_opts_entry: each field present when not zero (as CRIU writes it); raw sockets' part on raw sockets. */
function ipOpts(s: SocketInfo, raw: Map<string, Buffer | number | undefined>): Entry {
  const int = (name: string): number => {
    const v = raw.get(name);
    return Buffer.isBuffer(v) && v.length >= 4 ? v.readInt32LE(0) : 0;
  };
  const v6 = s.domain === AF.INET6;
  const o: Entry = {};
  const freebind = int(v6 ? 'IPV6_FREEBIND' : 'IP_FREEBIND') !== 0;
  if (freebind) o['freebind'] = true;
  if (int(v6 ? 'IPV6_RECVPKTINFO' : 'IP_PKTINFO')) o['pktinfo'] = true;
  if (!v6 && int('IP_TOS')) o['tos'] = int('IP_TOS');
  if (!v6 && int('IP_TTL')) o['ttl'] = int('IP_TTL');
  if (s.type === SOCK_TYPE.RAW) {
    const r: Entry = {};
    if (int(v6 ? 'IPV6_HDRINCL' : 'IP_HDRINCL')) r['hdrincl'] = true;
    if (!v6 && int('IP_NODEFRAG')) r['nodefrag'] = true;
    const filter = raw.get(v6 ? 'ICMPV6_FILTER' : 'ICMP_FILTER');
    if (s.protocol === (v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP) && Buffer.isBuffer(filter)) {
      r['icmpv_filter'] = Array.from({ length: filter.length >> 2 }, (_, i) => filter.readUInt32LE(4 * i));
    }
    o['raw'] = r;
  }
  return o;
}

function inetEntry(id: number, flags: number, ino: number, s: SocketInfo, connected: Endpoint | null, opts: Entry, ip: Entry): Entry {
  const { port, addr } = sockaddrParts(s.local!);
  const peer = connected ?? { port: 0, addr: s.domain === AF.INET ? [0] : [0, 0, 0, 0] };
  const state = s.listening ? TCP_STATE.LISTEN : connected ? TCP_STATE.ESTABLISHED : TCP_STATE.CLOSE;
  const isk: Entry = {
    id, ino, family: s.domain, type: s.type, proto: s.protocol, state,
    src_port: port, dst_port: peer.port, flags, backlog: s.listening ? listenBacklog(s.domain, ino) : 0,
    src_addr: addr, dst_addr: peer.addr, fown: fown(),
    opts,
  };
  if (s.domain === AF.INET6) isk['v6only'] = s.v6only;
  isk['ip_opts'] = ip;
  // UDP and UDP-lite: how it was shut down (sock_diag), as CRIU keeps it
  if (s.type === SOCK_TYPE.DGRAM && (s.protocol === IPPROTO.UDP || s.protocol === IPPROTO.UDPLITE)) {
    const how = inetShutdown(s.domain, s.protocol, ino) & 3;
    if (how) isk['shutdown'] = ['NONE', 'READ', 'WRITE', 'BOTH'][how];
  }
  return { type: 'INETSK', id, isk };
}

export const inetDump: DumpKind = {
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const s = socketOf(pid, rec);
    if (!s) return undefined;
    // netlink and packet sockets are theirs
    if (s.domain !== AF.INET && s.domain !== AF.INET6) return undefined;
    const peer = checkInet(pid, rec, s);
    const v6 = s.domain === AF.INET6;
    const kept = [...(v6 ? IP6_KEPT : IP_KEPT), ...(s.type === SOCK_TYPE.RAW ? (v6 ? RAW6_KEPT : RAW_KEPT) : [])];
    const { opts, raw } = readSocketOptions(pid, rec.fd, kept);
    return { type: 'INETSK', key: rec.target, entry: (id) => inetEntry(id, flags, inodeOf(rec.target), s, peer, opts, ipOpts(s, raw)) };
  },
};
