/**
 * The page server's transport, as `criu page-server` and `criu dump --page-server` use it: one
 * TCP connection, the server listening on --address (any IPv4 address when not given) and --port
 * (a port the kernel picks when not given), the client connecting to --address:--port.
 */
import type { Server, Socket } from 'node:net';
// node:net and node:dns are loaded when a page server is started or reached (not by every user of the package)
const net = () => process.getBuiltinModule('node:net');
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PageServerClient } from './page-server.js';

export interface PageServerEndpoint {
  /** IPv4 or IPv6 literal (server); a host name too (client). Server default: any IPv4 address. */
  address?: string;
  /** TCP port; 0 or undefined on the server: one the kernel picks. */
  port?: number;
}

/** --port as CRIU takes it: a number 1..65535 (0 or garbage is a bad argument). */
export function parsePort(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new CrtoolsError('USAGE', `invalid argument for --port: ${v}`, { exitCode: ExitCode.USAGE });
  return n;
}

export interface PageServerListener {
  server: Server;
  /** the port listened on (the one the kernel picked when asked for 0) */
  port: number;
  /** the listening socket's descriptor (to hand to a detached copy) */
  fd: number;
  /** the first connection; the listener is closed then (one dump per server, as CRIU's) */
  accept(): Promise<Socket>;
  close(): void;
}

/**
 * Listen for one page-server client. `fd`: listen on an inherited listening socket instead
 * (a `--daemon` copy).
 */
export async function listenPageServer(o: PageServerEndpoint & { fd?: number }): Promise<PageServerListener> {
  const address = o.address ?? '0.0.0.0';
  if (o.fd === undefined && net().isIP(address) === 0) {
    throw new CrtoolsError('PS_BAD_ADDRESS', `invalid page server address "${address}": it must be an IPv4 or IPv6 address`, { exitCode: ExitCode.USAGE });
  }
  let pending: Socket | null = null;
  let waiter: ((s: Socket) => void) | null = null;
  const server = net().createServer({ noDelay: true }, (s) => {
    if (pending || !waiter) {
      if (!pending) pending = s;
      else s.destroy(); // one client only
      return;
    }
    const w = waiter;
    waiter = null;
    pending = s;
    w(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new CrtoolsError('PS_LISTEN', `can't start the page server on ${address}:${o.port ?? 0}: ${e.code ?? e.message}`, { exitCode: ExitCode.FAILED, cause: e })),
    );
    if (o.fd !== undefined) server.listen({ fd: o.fd, backlog: 1 }, resolve);
    else server.listen({ host: address, port: o.port ?? 0, backlog: 1, ipv6Only: false }, resolve);
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : (o.port ?? 0);
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  return {
    server,
    port,
    fd,
    accept() {
      return new Promise<Socket>((resolve, reject) => {
        const done = (s: Socket) => {
          server.close();
          resolve(s);
        };
        if (pending) return done(pending);
        waiter = done;
        server.once('close', () => {
          if (waiter) reject(new CrtoolsError('PS_CLOSED', 'the page server stopped before a client came', { exitCode: ExitCode.FAILED }));
        });
      });
    },
    close() {
      server.close();
    },
  };
}

/**
 * Connect to a page server; the error names where and why (ECONNREFUSED: nobody listens there).
 * A refused connection is tried again for `refusedWaitMs` (default 5 s) before it is an error: a
 * page server started just before the dump (`criu page-server ... & criu dump --page-server`, as
 * CRIU's own scripts do) may not listen yet, node's start-up being longer than CRIU's. Nothing is
 * frozen while this waits (the dump connects before it touches the tree).
 */
export async function connectPageServer(o: Required<Pick<PageServerEndpoint, 'address' | 'port'>> & { timeoutMs?: number; refusedWaitMs?: number }): Promise<{ client: PageServerClient; socket: Socket }> {
  let host = o.address;
  if (net().isIP(host) === 0) {
    try {
      host = (await process.getBuiltinModule('node:dns/promises').lookup(host)).address;
    } catch (e) {
      throw new CrtoolsError('PS_CONNECT', `failed to resolve the page server's host name ${o.address}: ${(e as NodeJS.ErrnoException).code ?? e}`, { exitCode: ExitCode.FAILED, cause: e });
    }
  }
  const giveUpAt = Date.now() + (o.refusedWaitMs ?? 5_000);
  for (let pause = 20; ; pause = Math.min(pause * 2, 200)) {
    try {
      const socket = await connectOnce(host, o);
      // errors from now on surface through the client's reads and writes
      socket.on('error', () => {});
      return { client: new PageServerClient(socket), socket };
    } catch (e) {
      if ((e as CrtoolsError).context?.['errno'] !== 'ECONNREFUSED' || Date.now() + pause > giveUpAt) throw e;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

function connectOnce(host: string, o: { address: string; port: number; timeoutMs?: number }): Promise<Socket> {
  const socket = net().connect({ host, port: o.port, noDelay: true });
  return new Promise<Socket>((resolve, reject) => {
    const t = setTimeout(() => {
      socket.destroy();
      reject(new CrtoolsError('PS_CONNECT', `can't connect to the page server at ${o.address}:${o.port}: timed out`, { exitCode: ExitCode.FAILED }));
    }, o.timeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      socket.destroy();
      reject(new CrtoolsError('PS_CONNECT', `can't connect to the page server at ${o.address}:${o.port}: ${e.code ?? e.message}`, { exitCode: ExitCode.FAILED, cause: e, context: { errno: e.code } }));
    });
  });
}
