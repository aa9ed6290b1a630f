/**
 * IPv4/IPv6 sockets made again: listening TCP, TCP not connected; UDP, UDP-lite, ping and raw
 * sockets, bound or not, connected or not.
 */
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import { refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { sockoptCalls, type SockoptCall } from '../../sockopts/plan.js';
import type { FileBase } from '../reg/plan.js';

/**
 * inet: an IPv4/IPv6 socket: bound to `address` (a raw sockaddr; none = unbound), listening
 * with `backlog` when `listen`, connected to `connect` (a raw sockaddr; none = not connected).
 */
export interface InetFilePlan extends FileBase {
  kind: 'inet';
  type: number;
  inet: {
    family: number; protocol: number; address?: Buffer; connect?: Buffer; listen: boolean; backlog: number;
    /** shutdown(2) once made (SHUT_RD 1, SHUT_WR 2 bits as RCV/SEND_SHUTDOWN), 0: none */
    shutdown: number;
    reuseaddr: boolean; reuseport: boolean; v6only: boolean; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[];
  };
}

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SOL_RAW = 255;
const SOL_ICMPV6 = 58;

function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0, 0);
  return b;
}

/** ip_opts_entry back into setsockopt calls (what CRIU's restore sets from it). */
export function ipOptCalls(ip: Obj | undefined, family: number, proto: number): SockoptCall[] {
  if (!ip) return [];
  const out: SockoptCall[] = [];
  const v6 = family === AF.INET6;
  const raw = ip.raw as Obj | undefined;
  if (raw) {
    const filter = ((raw.icmpv_filter ?? []) as (number | bigint)[]).map(Number);
    if (filter.length && (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6)) {
      const b = Buffer.alloc(filter.length * 4);
      filter.forEach((w, i) => b.writeUInt32LE(w >>> 0, 4 * i));
      out.push({ level: v6 ? SOL_ICMPV6 : SOL_RAW, name: 1, value: b }); // ICMPV6_FILTER / ICMP_FILTER
    }
    if (raw.nodefrag !== undefined) out.push({ level: SOL_IP, name: 22, value: i32(raw.nodefrag ? 1 : 0) }); // IP_NODEFRAG
    if (raw.hdrincl !== undefined) out.push({ level: v6 ? SOL_IPV6 : SOL_IP, name: v6 ? 36 : 3, value: i32(raw.hdrincl ? 1 : 0) }); // IPV6_HDRINCL / IP_HDRINCL
  }
  if (v6) {
    if (ip.freebind !== undefined) out.push({ level: SOL_IPV6, name: 78, value: i32(ip.freebind ? 1 : 0) }); // IPV6_FREEBIND
    if (ip.pktinfo !== undefined) out.push({ level: SOL_IPV6, name: 49, value: i32(ip.pktinfo ? 1 : 0) }); // IPV6_RECVPKTINFO
  } else {
    if (ip.freebind !== undefined) out.push({ level: SOL_IP, name: 15, value: i32(ip.freebind ? 1 : 0) }); // IP_FREEBIND
    if (ip.pktinfo !== undefined) out.push({ level: SOL_IP, name: 8, value: i32(ip.pktinfo ? 1 : 0) }); // IP_PKTINFO
    if (ip.tos !== undefined) out.push({ level: SOL_IP, name: 1, value: i32(Number(ip.tos)) }); // IP_TOS
    if (ip.ttl !== undefined) out.push({ level: SOL_IP, name: 2, value: i32(Number(ip.ttl)) }); // IP_TTL
  }
  return out;
}

/** A sockaddr_in/in6 from a port and CRIU's address words. */
function sockaddr(family: number, port: number, words: number[]): Buffer {
  const a = Buffer.alloc(family === AF.INET ? 16 : 28);
  a.writeUInt16LE(family, 0);
  a.writeUInt16BE(port, 2);
  if (family === AF.INET) a.writeUInt32LE((words[0] ?? 0) >>> 0, 4);
  else for (let i = 0; i < 4; i++) a.writeUInt32LE((words[i] ?? 0) >>> 0, 8 + 4 * i);
  return a;
}

/** What kind of IP socket this is, by type and protocol ('' when not one this restore makes). */
function ipKind(family: number, type: number, proto: number): string {
  if (type === SOCK_TYPE.STREAM && proto === IPPROTO.TCP) return 'TCP';
  if (type === SOCK_TYPE.RAW) return 'raw';
  if (type !== SOCK_TYPE.DGRAM) return '';
  if (proto === IPPROTO.UDP) return 'UDP';
  if (proto === IPPROTO.UDPLITE) return 'UDP-lite';
  if (proto === (family === AF.INET ? IPPROTO.ICMP : IPPROTO.ICMPV6)) return 'ping';
  return '';
}

export const inetPlan: PlanKind<InetFilePlan> = {
  type: 'INETSK',
  field: 'isk',
  plan(k: Obj, ctx: PlanContext): InetFilePlan {
    const family = Number(k.family);
    const type = Number(k.type);
    const proto = Number(k.proto);
    const state = Number(k.state);
    const kind = ipKind(family, type, proto);
    const tcp = kind === 'TCP';
    const listen = state === TCP_STATE.LISTEN;
    const connected = state === TCP_STATE.ESTABLISHED && !tcp;
    if ((family !== AF.INET && family !== AF.INET6) || !kind || !(listen || connected || state === TCP_STATE.CLOSE) || (listen && !tcp)) {
      throw refuse(`${ctx.what}: ${kind || `inet (type ${type}, proto ${proto})`} socket in state ${state} is not restored yet (TCP listening and unconnected, UDP, UDP-lite, ping and raw ones are)`);
    }
    // sk_shutdown: by name (crit JSON) or number
    const shutdown = ({ NONE: 0, READ: 1, WRITE: 2, BOTH: 3 } as Record<string, number>)[String(k.shutdown ?? 'NONE')] ?? Number(k.shutdown);
    if (shutdown && !(kind === 'UDP' || kind === 'UDP-lite')) throw refuse(`${ctx.what}: ${kind} socket shut down (${k.shutdown}) is not restored`);
    const port = Number(k.src_port);
    const words = ((k.src_addr ?? []) as number[]).map(Number);
    // a raw socket's port is its protocol: bound only to an address
    const bound = kind === 'raw' ? words.some((w) => w !== 0) : port !== 0;
    const address = bound ? sockaddr(family, port, words) : undefined;
    const connect = connected ? sockaddr(family, Number(k.dst_port), ((k.dst_addr ?? []) as number[]).map(Number)) : undefined;
    const o = (k.opts ?? {}) as Obj;
    return {
      kind: 'inet', flags: Number(k.flags), pos: 0n, type,
      inet: {
        family, protocol: proto, address, connect, listen, backlog: Number(k.backlog ?? 0), shutdown,
        reuseaddr: !!o.reuseaddr, reuseport: !!o.so_reuseport, v6only: !!k.v6only,
        sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0),
        sockopts: [...ipOptCalls(k.ip_opts as Obj | undefined, family, proto), ...sockoptCalls(o, tcp)],
      },
    };
  },
  inheritKey: (k: Obj) => `socket:[${k.ino}]`,
};
