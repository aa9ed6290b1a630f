/**
 * TCP connections through the kernel's repair mode (TCP_REPAIR, needs CAP_NET_ADMIN): an
 * established connection's state and queues read without a packet leaving (the dump, on its
 * copy of a task's socket), and a socket made again into that connection (the restore).
 */
import { isNativeSysError, syscallError, type NativeSysError } from '@crtools/common';
import { addon, type FailureContext } from './native.js';

/** The result, or the error of the system call that failed (named by the native side: one call does several). */
function orThrow<T>(r: T | NativeSysError, _fallback: string, context: FailureContext = {}): T {
  if (isNativeSysError(r)) throw syscallError(r.syscall || _fallback, r.errno, context);
  return r;
}

/**
 * What the dump keeps of a connection (CRIU's tcp_stream_entry, with the queues' bytes). In a
 * half-closed state (FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING) the lengths count bytes only,
 * not a FIN; the sequence numbers are the kernel's (past a FIN sent or received).
 */
export interface TcpConnState {
  /** tcpi_state (TCP_ESTABLISHED 1, …) */
  state: number;
  /** receive queue: bytes not read yet, and the sequence number after them (rcv_nxt) */
  inqLen: number;
  inqSeq: number;
  /** send queue: bytes sent but not acknowledged plus those not sent yet (unsqLen of them), and write_seq */
  outqLen: number;
  outqSeq: number;
  unsqLen: number;
  mssClamp: number;
  /** TCPI_OPT_* bits: TIMESTAMPS 1, SACK 2, WSCALE 4 */
  optMask: number;
  sndWscale: number;
  rcvWscale: number;
  timestamp: number;
  /** TCP_REPAIR_WINDOW: snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup (null: the kernel has none) */
  window: [number, number, number, number, number] | null;
  inq: Buffer;
  outq: Buffer;
}

/** A connection to make again: its state, both ends (raw sockaddrs) and how the socket was set. */
export interface TcpRestoreArgs extends TcpConnState {
  family: number;
  src: Buffer;
  dst: Buffer;
  v6only: boolean;
  reuseport: boolean;
  /** SO_SNDBUF / SO_RCVBUF as getsockopt gave them (0: the default), set before connecting */
  sndbuf: number;
  rcvbuf: number;
  /** how the task shut it down (sk_shutdown bits: 1 receive, 2 send; 0 none), applied last */
  shutdown: number;
  /** the network lock's packet mark: the segments played as the peer's (a half-closed connection's FIN, ACK) carry it */
  mark: number;
}

/** tcpi_state of the TCP socket at our descriptor fd. */
export function tcpState(fd: number, context: FailureContext = {}): number {
  return orThrow(addon.get().tcpState(fd), 'getsockopt', context);
}

/** A TCP socket getpeername(2) calls not connected (CLOSE, SYN_SENT), as poll(2), SIOCINQ and SO_PEERNAME see it without consuming anything. */
export interface TcpIdle {
  /** tcpi_state */
  state: number;
  /** bytes left to read (a connection that ended with data the task has not read) */
  inq: number;
  /** poll(2) revents for POLLIN | POLLOUT | POLLRDHUP (POLLERR 0x8: an error not reported yet; POLLRDHUP 0x2000: receiving side shut) */
  events: number;
  /** the peer the socket was connecting or connected to (SO_PEERNAME, a raw sockaddr), null: never one */
  peer: Buffer | null;
}

/** tcpIdle of our TCP socket at fd. */
export function tcpIdle(fd: number, context: FailureContext = {}): TcpIdle {
  return orThrow(addon.get().tcpIdle(fd), 'getsockopt', context);
}

/** Put our TCP socket at fd in repair mode (on) or take it out (off: the connection goes on). */
export function tcpRepair(fd: number, on: boolean, context: FailureContext = {}): void {
  orThrow(addon.get().tcpRepair(fd, on ? 1 : 0), 'setsockopt', context);
}

/** The state and queues of the connection at fd, a socket already in repair mode (nothing consumed). */
export function tcpSave(fd: number, context: FailureContext = {}): TcpConnState {
  return orThrow(addon.get().tcpSave(fd), 'getsockopt', context);
}

/**
 * A socket of ours (close-on-exec), in repair mode, that is the connection described, in its
 * state: a half-closed one gets our FIN by shutdown() in repair mode and the peer's (and its
 * ACK of ours) as segments written through a raw socket with `mark` (CAP_NET_RAW).
 */
export function tcpRestore(args: TcpRestoreArgs, context: FailureContext = {}): number {
  return orThrow(addon.get().tcpRestore(args), 'socket', context);
}

/** setsockopt(2) on a descriptor of ours. */
export function setSocketOption(fd: number, level: number, name: number, value: Buffer, context: FailureContext = {}): void {
  orThrow(addon.get().setSockopt(fd, level, name, value), 'setsockopt', context);
}

/** fcntl(F_SETFL) on a descriptor of ours. */
export function setFileFlags(fd: number, flags: number, context: FailureContext = {}): void {
  orThrow(addon.get().setFileFlags(fd, flags), 'fcntl', context);
}
