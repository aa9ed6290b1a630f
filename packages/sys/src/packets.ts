/**
 * AF_UNIX SOCK_SEQPACKET sockets: one message per send, one per receive, boundaries kept (the
 * transport of CRIU's RPC). Receiving never blocks the event loop: an empty queue waits on a
 * libuv poll of the descriptor (native watchReadable), then reads with MSG_DONTWAIT.
 */
import { closeSync } from 'node:fs';
import { CrtoolsError } from '@crtools/common';
import { addon, orThrow } from './native.js';

/** One message: its bytes and the descriptors that came with it (now ours, close-on-exec). */
export interface Packet {
  data: Buffer;
  fds: number[];
}

/** Who is at the other end of a connected socket (SO_PEERCRED: as of connect / socketpair). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * A one-shot wait for a descriptor to become readable, on the Node event loop (uv_poll); cancel()
 * ends a pending wait at once (its promise resolves).
 */
class Readable {
  private watch: number | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly fd: number) {}

  wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.watch = orThrow(
        addon.get().watchReadable(this.fd, () => {
          this.watch = undefined;
          this.wake = undefined;
          resolve();
        }),
        'uv_poll_start',
      );
    });
  }

  cancel(): void {
    if (this.watch !== undefined) addon.get().unwatch(this.watch);
    this.watch = undefined;
    this.wake?.();
    this.wake = undefined;
  }
}

/** A connected SOCK_SEQPACKET socket on a descriptor this object owns (close() closes it). */
export class SeqpacketSocket {
  private readonly readable: Readable;
  private closed = false;
  private reading = false;

  constructor(readonly fd: number) {
    this.readable = new Readable(fd);
  }

  /** The next message, or null once the peer has closed (or this socket was closed meanwhile). */
  async receive(): Promise<Packet | null> {
    if (this.reading) throw new CrtoolsError('SEQPACKET_BUSY', 'a receive is already pending on this socket');
    this.reading = true;
    try {
      for (;;) {
        if (this.closed) return null;
        const r = orThrow(addon.get().recvPacket(this.fd), 'recvmsg');
        if (r) {
          if (r.truncated) throw new CrtoolsError('SEQPACKET_TRUNCATED', `a message on fd ${this.fd} was cut short`);
          return r.data.length === 0 ? null : { data: r.data, fds: r.fds };
        }
        await this.readable.wait();
      }
    } finally {
      this.reading = false;
    }
  }

  /** Send one message (with descriptors, passed by SCM_RIGHTS); EPIPE once the peer is gone. */
  send(data: Buffer, fds: number[] = []): void {
    orThrow(addon.get().sendPacket(this.fd, data, fds), 'sendmsg');
  }

  /** The peer's pid, uid and gid (SO_PEERCRED). */
  peer(): PeerCredentials {
    return orThrow(addon.get().peerCred(this.fd), 'getsockopt', { message: 'SO_PEERCRED' });
  }

  /** Close the descriptor; a pending receive() returns null. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.readable.cancel();
    closeQuietly(this.fd);
  }
}

/** close(2), where a descriptor that was never open (EBADF) is not worth an error. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EBADF') throw e;
  }
}

/** A connected pair of SOCK_SEQPACKET sockets (close-on-exec). */
export function seqpacketPair(): [SeqpacketSocket, SeqpacketSocket] {
  const [a, b] = orThrow(addon.get().seqpacketPair(), 'socketpair');
  return [new SeqpacketSocket(a), new SeqpacketSocket(b)];
}

/** Connect to a listening SOCK_SEQPACKET socket at path. */
export function seqpacketConnect(path: string): SeqpacketSocket {
  return new SeqpacketSocket(orThrow(addon.get().seqpacketConnect(path), 'connect', { path }));
}

/** A listening SOCK_SEQPACKET socket: accept() waits on the event loop. */
export class SeqpacketServer {
  private readonly readable: Readable;
  private closed = false;

  constructor(readonly fd: number, readonly path: string) {
    this.readable = new Readable(fd);
  }

  /** The next connection, or null once close() was called. */
  async accept(): Promise<SeqpacketSocket | null> {
    for (;;) {
      if (this.closed) return null;
      const c = orThrow(addon.get().acceptConn(this.fd), 'accept4', { path: this.path });
      if (c !== null) return new SeqpacketSocket(c);
      await this.readable.wait();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.readable.cancel();
    closeSync(this.fd);
  }
}

/** Bind a SOCK_SEQPACKET socket to path (which must not exist) and listen on it. */
export function seqpacketListen(path: string, backlog = 16): SeqpacketServer {
  return new SeqpacketServer(orThrow(addon.get().seqpacketListen(path, backlog), 'bind', { path }), path);
}

/** An AF_UNIX SOCK_STREAM socket connected to path (blocking, close-on-exec); the caller closes it. */
export function streamConnect(path: string): number {
  return orThrow(addon.get().streamConnect(path), 'connect', { message: path });
}

/** An AF_UNIX SOCK_STREAM socket bound to path and listening (accept with acceptConnection). */
export function streamListen(path: string, backlog = 10): number {
  return orThrow(addon.get().streamListen(path, backlog), 'bind', { message: path });
}

/** A connection waiting on a listening socket, or null when none is. */
/** SO_PEERCRED of a connected stream socket descriptor: who connected (as of connect). */
export function peerCredentials(fd: number): PeerCredentials {
  return orThrow(addon.get().peerCred(fd), 'getsockopt', { message: 'SO_PEERCRED' });
}

export function acceptConnection(fd: number): number | null {
  return orThrow(addon.get().acceptConn(fd), 'accept4');
}

/** Waits for `len` bytes of a stream socket (fewer: the peer closed) with the descriptors sent along. */
export function recvExact(fd: number, len: number): Packet {
  return orThrow(addon.get().recvExact(fd, len), 'recvmsg');
}

/** Sends `data` with `fds` (SCM_RIGHTS) in one sendmsg; the bytes sent. */
export function sendWithFds(fd: number, data: Buffer, fds: number[] = []): number {
  return orThrow(addon.get().sendPacket(fd, data, fds), 'sendmsg');
}
