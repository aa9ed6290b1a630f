/**
 * sk_opts_entry back into the setsockopt calls that give a new socket those options, in the
 * order they must be made (the buffer lock last: forcing the buffer sizes sets it).
 */
import type { Obj } from '../plan/kind.js';
import type { FileBase } from '../kinds/reg/plan.js';
import { filterProgram } from './filter.js';

export interface SockoptCall {
  level: number;
  name: number;
  /** the option's bytes; SO_ATTACH_FILTER: the instructions (the restorer wraps them in a sock_fprog) */
  value: Buffer;
  /** made once the socket is bound and connected (a packet socket's fanout, a netlink socket's groups) */
  late?: boolean;
}

const SOL_SOCKET = 1;
const IPPROTO_TCP = 6;

/** an int option's value: 4 bytes, native (little-endian) order; values past 2^31 as their 32 bits */
export function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0, 0);
  return b;
}

function timeval(sec: unknown, usec: unknown): Buffer | undefined {
  const s = BigInt((sec as bigint | number | undefined) ?? 0);
  const u = BigInt((usec as bigint | number | undefined) ?? 0);
  if (s === 0n && u === 0n) return undefined;
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(BigInt.asIntN(64, s), 0);
  b.writeBigInt64LE(BigInt.asIntN(64, u), 8);
  return b;
}

/** The calls, without the buffer sizes and address reuse (set by the socket's own restore, before bind). */
export function sockoptCalls(o: Obj | undefined, tcp: boolean): SockoptCall[] {
  if (!o) return [];
  const out: SockoptCall[] = [];
  const put = (level: number, name: number, value: Buffer | undefined) => value && out.push({ level, name, value });
  const flag = (name: number, v: unknown) => v && put(SOL_SOCKET, name, i32(1));
  const num = (name: number, v: unknown, dflt = 0) => v !== undefined && Number(v) !== dflt && put(SOL_SOCKET, name, i32(Number(v)));
  put(SOL_SOCKET, 21, timeval(o.so_snd_tmo_sec, o.so_snd_tmo_usec)); // SO_SNDTIMEO
  put(SOL_SOCKET, 20, timeval(o.so_rcv_tmo_sec, o.so_rcv_tmo_usec)); // SO_RCVTIMEO
  num(12, o.so_priority); // SO_PRIORITY
  num(18, o.so_rcvlowat, 1); // SO_RCVLOWAT
  num(36, o.so_mark); // SO_MARK
  flag(16, o.so_passcred); // SO_PASSCRED
  flag(34, o.so_passsec); // SO_PASSSEC
  flag(5, o.so_dontroute); // SO_DONTROUTE
  flag(11, o.so_no_check); // SO_NO_CHECK
  flag(6, o.so_broadcast); // SO_BROADCAST
  flag(9, o.so_keepalive); // SO_KEEPALIVE
  num(10, o.so_oobinline); // SO_OOBINLINE
  if (typeof o.so_bound_dev === 'string' && o.so_bound_dev) put(SOL_SOCKET, 25, Buffer.from(o.so_bound_dev + '\0')); // SO_BINDTODEVICE
  if (o.so_linger !== undefined) {
    const b = Buffer.alloc(8);
    b.writeInt32LE(1, 0);
    b.writeInt32LE(Number(o.so_linger), 4);
    put(SOL_SOCKET, 13, b); // SO_LINGER
  }
  if (tcp) {
    if (o.tcp_keepcnt !== undefined) put(IPPROTO_TCP, 6, i32(Number(o.tcp_keepcnt)));
    if (o.tcp_keepidle !== undefined) put(IPPROTO_TCP, 4, i32(Number(o.tcp_keepidle)));
    if (o.tcp_keepintvl !== undefined) put(IPPROTO_TCP, 5, i32(Number(o.tcp_keepintvl)));
  }
  const filter = (o.so_filter ?? []) as (bigint | number)[];
  if (filter.length) {
    put(SOL_SOCKET, 26, filterProgram(filter)); // SO_ATTACH_FILTER
  }
  if (o.so_buf_lock !== undefined) put(SOL_SOCKET, 72, i32(Number(o.so_buf_lock))); // SO_BUF_LOCK, last
  return out;
}

/**
 * socket: a socket made on its own with socket(family, type, protocol), its options, bound to
 * `address` and connected to `connect` (raw sockaddrs; none = not bound / not connected), then
 * its late options: a netlink or packet socket.
 */
export interface SocketFilePlan extends FileBase {
  kind: 'socket';
  type: number;
  socket: { family: number; protocol: number; address?: Buffer; connect?: Buffer; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[] };
}

/** All of sk_opts_entry as calls, address reuse included: for sockets that are not IP ones (netlink, packet). */
export function allSockoptCalls(o: Obj | undefined): SockoptCall[] {
  const out: SockoptCall[] = [];
  if (o?.reuseaddr) out.push({ level: SOL_SOCKET, name: 2, value: i32(1) }); // SO_REUSEADDR
  if (o?.so_reuseport) out.push({ level: SOL_SOCKET, name: 15, value: i32(1) }); // SO_REUSEPORT
  return [...out, ...sockoptCalls(o, false)];
}
