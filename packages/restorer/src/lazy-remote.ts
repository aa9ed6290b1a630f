/**
 * `criu lazy-pages --page-server --address A --port P`: the missing pages come from a remote
 * page server (`criu dump --lazy-pages` on the dumping side, or `criu page-server --lazy-pages`)
 * instead of the local pages images, with CRIU's PS_IOV_GET: the request names the task by its
 * pid in the images, the address and the number of pages; the answer is a PS_IOV_ADD_F header
 * (perhaps fewer pages than asked) and the pages. The daemon's loop is synchronous (it polls the
 * userfaultfds), so the connection is used synchronously too: made by Node, then read and
 * written on its descriptor with the event loop kept away from it (the socket paused).
 */
import type { Socket } from 'node:net';
import { CrtoolsError, ExitCode, PAGE_SIZE } from '@crtools/common';
import { connectPageServer, decodePsIov, encodePsIov, PS_IOV_CLOSE, PS_IOV_GET, PS_IOV_SIZE } from '@crtools/pagemap';
import { recvExact, sendWithFds } from '@crtools/sys';

export class RemotePages {
  private closed = false;
  private constructor(private readonly socket: Socket, private readonly fd: number, private readonly where: string) {}

  static async connect(address: string, port: number): Promise<RemotePages> {
    const { socket } = await connectPageServer({ address, port });
    socket.pause();
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    if (fd < 0) {
      socket.destroy();
      throw new CrtoolsError('PS_CONNECT', `the connection to the page server at ${address}:${port} has no descriptor`, { exitCode: ExitCode.FAILED });
    }
    return new RemotePages(socket, fd, `${address}:${port}`);
  }

  private lost(what: string, cause?: unknown): CrtoolsError {
    return new CrtoolsError('LAZY_PAGES_REMOTE', `lazy-pages: the page server at ${this.where} ${what}`, { exitCode: ExitCode.FAILED, ...(cause ? { cause } : {}) });
  }

  /** a socket error (ECONNRESET: the dumping side died) said as the connection lost */
  private io<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof CrtoolsError && e.code === 'LAZY_PAGES_REMOTE') throw e;
      throw this.lost(`is gone: ${(e as Error).message} (${what})`, e);
    }
  }

  private send(cmd: number, nrPages: bigint, vaddr: bigint, dstId: bigint): void {
    const b = encodePsIov({ cmd, nrPages, vaddr, dstId });
    if (this.io('sending a request', () => sendWithFds(this.fd, b)) !== b.length) throw this.lost('took a request only in part');
  }

  private recv(n: number, what: string): Buffer {
    const r = this.io(what, () => recvExact(this.fd, n));
    if (r.data.length < n) throw this.lost(`closed the connection (${what})`);
    return r.data;
  }

  /** Fill dest with task id's pages from vaddr, asking again while the server answers fewer. */
  get(id: number, vaddr: bigint, dest: Buffer): void {
    let done = 0;
    while (done < dest.length) {
      const at = vaddr + BigInt(done);
      const want = (dest.length - done) / PAGE_SIZE;
      this.send(PS_IOV_GET, BigInt(want), at, BigInt(id));
      const h = decodePsIov(this.recv(PS_IOV_SIZE, `asked for ${want} page(s) of pid ${id} at ${at.toString(16)}`));
      const n = Number(h.nrPages);
      if (h.vaddr !== at || h.dstId !== BigInt(id) || n < 1 || n > want) {
        throw this.lost(`answered ${n} page(s) of ${h.dstId} at ${h.vaddr.toString(16)} for ${want} of pid ${id} at ${at.toString(16)}`);
      }
      this.recv(n * PAGE_SIZE, `in the pages of pid ${id} at ${at.toString(16)}`).copy(dest, done);
      done += n * PAGE_SIZE;
    }
  }

  /** PS_IOV_CLOSE and its status (as CRIU's daemon: the server then sees the connection close). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.send(PS_IOV_CLOSE, 0n, 0n, 0n);
      const st = this.recv(4, 'before answering PS_IOV_CLOSE').readInt32LE(0);
      if (st !== 0) throw this.lost(`ended with status ${st}`);
    } finally {
      this.socket.destroy();
    }
  }

  /** The connection dropped without a word (a failure on our side). */
  abort(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
