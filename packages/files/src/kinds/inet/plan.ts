/**
 * IPv4/IPv6 sockets made again: listening TCP, TCP not connected (never, or no longer: a
 * connection that ended comes back as a new socket bound to its address), connecting (SYN_SENT),
 * established and half-closed TCP connections (with the state and queues of their tcp-stream-<ino>.img); UDP, UDP-lite, ping and raw
 * sockets, bound or not, connected or not.
 */
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE, namesOf } from '@crtools/images/facts';
import { badImage, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { i32, sockoptCalls, type SockoptCall } from '../../sockopts/plan.js';
import type { FileBase } from '../reg/plan.js';
import type { LockedConnection } from './netlock.js';

const STATE_NAMES = namesOf(TCP_STATE);

/**
 * The states of a TCP connection made again from its stream (as CRIU 4.2): established,
 * half-closed, and being connected (SYN_SENT: its connect made again, the SYN sent anew).
 */
const CONNECTION_STATES = new Set<number>([TCP_STATE.SYN_SENT, TCP_STATE.ESTABLISHED, TCP_STATE.FIN_WAIT1, TCP_STATE.FIN_WAIT2, TCP_STATE.CLOSE_WAIT, TCP_STATE.LAST_ACK, TCP_STATE.CLOSING]);

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
    /** IP_FREEBIND (IPV6_FREEBIND) on: left on after the bind (which is always made with it on) */
    freebind?: boolean;
    /**
     * bound in TCP repair mode, which lets a socket take an address in use (a TCP socket with
     * no connection: the accepted end of one that ended keeps its listener's port; with the
     * listener made again first, an ordinary bind would fail with EADDRINUSE)
     */
    forceBind?: boolean;
  };
}

/** A connection's state as tcp_stream_entry keeps it, with its queues' bytes. */
export interface TcpStreamPlan {
  inqLen: number; inqSeq: number; outqLen: number; outqSeq: number; unsqLen: number;
  mssClamp: number; optMask: number; sndWscale: number; rcvWscale: number; timestamp: number;
  window: [number, number, number, number, number] | null;
  inq: Buffer; outq: Buffer;
}

/**
 * tcp: an established, half-closed or connecting (SYN_SENT) TCP connection from `src` to `dst` (raw sockaddrs), made again by the
 * restoring process in repair mode (the restorer hands it to the task as an inherited file);
 * `closed` is what --tcp-close makes instead (a socket neither bound nor connected, shut down both ways). A
 * connection that ended while the task held it (CLOSE with its peer, as CRIU 4.2 writes it) is
 * made again from its stream and brought to CLOSE by its FINs; without a stream (--tcp-close),
 * as `closed`: a new socket bound to its address, its receiving side shut as it was.
 */
export interface TcpFilePlan extends FileBase {
  kind: 'tcp';
  type: number;
  tcp: {
    ino: number; family: number; src: Buffer; dst: Buffer; conn: LockedConnection;
    /** tcpi_state: ESTABLISHED, a half-closed state (its FINs put back by the restore), SYN_SENT (its connect made again); CLOSE: a connection that ended, made as `closed` */
    state: number;
    /** how the task shut it down (sk_shutdown bits: 1 receive, 2 send) */
    shutdown: number;
    reuseaddr: boolean; reuseport: boolean; v6only: boolean; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[];
    /** the stream (absent: dumped with --tcp-close, no stream kept) */
    stream?: TcpStreamPlan;
  };
  closed: InetFilePlan;
}

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SOL_RAW = 255;
const SOL_ICMPV6 = 58;

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

const num = (v: unknown): number => Number(v ?? 0);

/** tcp_stream_entry (and its payload) → the stream to put back. */
function streamPlan(e: Obj, path: string): TcpStreamPlan {
  if (e.unsq_len === undefined) throw badImage(`${path}: no unsq_len (written by a CRIU older than 3.x)`, { image: path });
  const inqLen = num(e.inq_len);
  const outqLen = num(e.outq_len);
  const extra: Buffer = e.extra ?? Buffer.alloc(0);
  if (extra.length !== inqLen + outqLen) throw badImage(`${path}: ${extra.length} bytes of queues for ${inqLen} + ${outqLen}`, { image: path });
  if (num(e.unsq_len) > outqLen) throw badImage(`${path}: ${num(e.unsq_len)} bytes not sent of a send queue of ${outqLen}`, { image: path });
  const optMask = num(e.opt_mask);
  if (optMask & 4 && e.rcv_wscale === undefined) throw badImage(`${path}: window scaling without rcv_wscale`, { image: path });
  if (optMask & 1 && e.timestamp === undefined) throw badImage(`${path}: timestamps without a timestamp`, { image: path });
  return {
    inqLen, inqSeq: num(e.inq_seq) >>> 0, outqLen, outqSeq: num(e.outq_seq) >>> 0, unsqLen: num(e.unsq_len),
    mssClamp: num(e.mss_clamp), optMask, sndWscale: num(e.snd_wscale), rcvWscale: num(e.rcv_wscale), timestamp: num(e.timestamp) >>> 0,
    window: e.snd_wnd === undefined ? null : [num(e.snd_wl1) >>> 0, num(e.snd_wnd), num(e.max_window), num(e.rcv_wnd), num(e.rcv_wup) >>> 0],
    inq: extra.subarray(0, inqLen), outq: extra.subarray(inqLen),
  };
}

/**
 * A TCP connection that ended while the task held it (both FINs, or a reset), as CRIU 4.2 writes
 * it: in CLOSE with its peer (and, dumped by CRIU, a stream of what was left to read).
 */
function endedConnection(k: Obj): boolean {
  return Number(k.state) === TCP_STATE.CLOSE && Number(k.dst_port ?? 0) !== 0 && Number(k.proto) === IPPROTO.TCP && Number(k.type) === SOCK_TYPE.STREAM;
}

/** tcp_opts_entry as setsockopt calls (TCP_NODELAY, TCP_CORK, keepalive), each where the entry has it. */
function tcpOptCalls(t: Obj): SockoptCall[] {
  const out: SockoptCall[] = [];
  if (t.nodelay !== undefined) out.push({ level: IPPROTO.TCP, name: 1, value: i32(t.nodelay ? 1 : 0) });
  if (t.cork !== undefined) out.push({ level: IPPROTO.TCP, name: 3, value: i32(t.cork ? 1 : 0) });
  if (t.keepcnt !== undefined) out.push({ level: IPPROTO.TCP, name: 6, value: i32(Number(t.keepcnt)) });
  if (t.keepidle !== undefined) out.push({ level: IPPROTO.TCP, name: 4, value: i32(Number(t.keepidle)) });
  if (t.keepintvl !== undefined) out.push({ level: IPPROTO.TCP, name: 5, value: i32(Number(t.keepintvl)) });
  return out;
}

export class InetPlans implements PlanKind<InetFilePlan | TcpFilePlan> {
  readonly type = 'INETSK';
  readonly field = 'isk';
  /** tcp_stream_entry of each connection, by socket inode */
  private readonly streams = new Map<number, TcpStreamPlan>();

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    for (const f of files.values()) {
      const k = f.isk as Obj | undefined;
      if (!k || !(CONNECTION_STATES.has(Number(k.state)) || endedConnection(k)) || Number(k.proto) !== IPPROTO.TCP || Number(k.type) !== SOCK_TYPE.STREAM) continue;
      const file = `tcp-stream-${Number(k.ino).toString(16)}.img`;
      // none: dumped with --tcp-close
      const e = await readImage(dir, file, 'TCP_STREAM', true);
      if (e?.[0]) this.streams.set(Number(k.ino), streamPlan(e[0], file));
    }
  }

  plan(k: Obj, ctx: PlanContext): InetFilePlan | TcpFilePlan {
    const family = Number(k.family);
    const type = Number(k.type);
    const proto = Number(k.proto);
    const state = Number(k.state);
    const kind = ipKind(family, type, proto);
    const tcp = kind === 'TCP';
    const listen = state === TCP_STATE.LISTEN;
    const established = tcp && CONNECTION_STATES.has(state);
    const connected = state === TCP_STATE.ESTABLISHED && !tcp;
    if ((family !== AF.INET && family !== AF.INET6) || !kind || !(listen || established || connected || state === TCP_STATE.CLOSE) || (listen && !tcp)) {
      throw refuse(`${ctx.what}: ${kind || `inet (type ${type}, proto ${proto})`} socket in state ${STATE_NAMES[state] ?? state} is not restored yet (TCP listening, unconnected, connecting, established and half-closed, UDP, UDP-lite, ping and raw ones are)`);
    }
    // sk_shutdown: by name (crit JSON) or number
    const shutdown = ({ NONE: 0, READ: 1, WRITE: 2, BOTH: 3 } as Record<string, number>)[String(k.shutdown ?? 'NONE')] ?? Number(k.shutdown);
    if (shutdown && !(kind === 'UDP' || kind === 'UDP-lite' || (tcp && !listen))) throw refuse(`${ctx.what}: ${kind} socket shut down (${k.shutdown}) is not restored`);
    const port = Number(k.src_port);
    const words = ((k.src_addr ?? []) as number[]).map(Number);
    const dwords = ((k.dst_addr ?? []) as number[]).map(Number);
    const dport = Number(k.dst_port);
    const o = (k.opts ?? {}) as Obj;
    const common = {
      reuseaddr: !!o.reuseaddr, reuseport: !!o.so_reuseport, v6only: !!k.v6only,
      sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0),
      sockopts: [...ipOptCalls(k.ip_opts as Obj | undefined, family, proto), ...sockoptCalls(o, tcp)],
    };
    // tcp_opts_entry (any TCP socket, as CRIU): setsockopt calls after the socket's own
    const tcpCalls = tcp ? tcpOptCalls((k.tcp_opts ?? {}) as Obj) : [];
    const inet = (address: Buffer | undefined, connect: Buffer | undefined, calls: SockoptCall[] = [], shut = shutdown): InetFilePlan => ({
      kind: 'inet', flags: Number(k.flags), pos: 0n, type,
      inet: {
        family, protocol: proto, address, connect, listen, backlog: Number(k.backlog ?? 0), shutdown: shut, ...common, sockopts: [...common.sockopts, ...calls],
        freebind: !!(k.ip_opts as Obj | undefined)?.freebind,
      },
    });
    // a raw socket's port is its protocol: bound only to an address
    const bound = kind === 'raw' ? words.some((w) => w !== 0) : port !== 0;
    const address = bound ? sockaddr(family, port, words) : undefined;
    const idle = (i: InetFilePlan): InetFilePlan => (tcp && !listen && address ? { ...i, inet: { ...i.inet, forceBind: true } } : i);
    if (tcp && state === TCP_STATE.CLOSE && dport) {
      // a connection that ended, its peer known: with its stream, made again as the connection
      // and brought to CLOSE by its FINs (addresses and unread bytes kept); without one (dumped
      // with --tcp-close), a new socket bound to its address, its receiving side shut as it was
      const stream = this.streams.get(Number(k.ino));
      return {
        kind: 'tcp', flags: Number(k.flags), pos: 0n, type,
        tcp: {
          ino: Number(k.ino), family, src: sockaddr(family, port, words), dst: sockaddr(family, dport, dwords),
          conn: { family, src: words, sport: port, dst: dwords, dport }, state, shutdown,
          ...common, sockopts: [...common.sockopts, ...tcpCalls], stream,
        },
        closed: idle(inet(address, undefined, tcpCalls)),
      };
    }
    if (!established) return idle(inet(address, connected ? sockaddr(family, dport, dwords) : undefined, tcpCalls));
    if (!port || !dport) throw badImage(`${ctx.what}: established TCP socket without both ports`, { image: 'files.img' });
    return {
      kind: 'tcp', flags: Number(k.flags), pos: 0n, type,
      tcp: {
        ino: Number(k.ino), family, src: sockaddr(family, port, words), dst: sockaddr(family, dport, dwords),
        conn: { family, src: words, sport: port, dst: dwords, dport }, state, shutdown,
        ...common, sockopts: [...common.sockopts, ...tcpCalls], stream: this.streams.get(Number(k.ino)),
      },
      // what --tcp-close makes instead (as CRIU 4.2): a socket neither bound nor connected, shut
      // down both ways (a read says EOF, a write EPIPE, poll POLLHUP: a connection that was closed)
      closed: inet(undefined, undefined, [], 3),
    };
  }

  inheritKey(k: Obj): string {
    return `socket:[${k.ino}]`;
  }
}
