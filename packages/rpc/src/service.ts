/**
 * `criu service`: a listening SOCK_SEQPACKET socket; each accepted client is served by a worker
 * of its own (the caller decides what a worker is: the cli starts `criu swrk` on the connection
 * in service mode), so that requests of different clients never share a process, its ptrace
 * state or its descriptors.
 */
import { chmodSync, closeSync, rmSync } from 'node:fs';
import { SeqpacketServer, SeqpacketSocket, seqpacketListen, seqpacketPair } from '@crtools/sys';

/** CRIU's default service address (relative to the working directory). */
export const DEFAULT_SERVICE_ADDRESS = './criu_service.socket';

/**
 * Bind the service socket at address (a stale socket file there is removed first, as CRIU
 * does) and make it reachable by every user: what each may ask is checked per request
 * (SO_PEERCRED, see access.ts).
 */
export function listenService(address: string = DEFAULT_SERVICE_ADDRESS): SeqpacketServer {
  rmSync(address, { force: true });
  const server = seqpacketListen(address, 16);
  chmodSync(address, 0o666);
  return server;
}

/** The service socket inherited on fd (e.g. by the detached copy of `criu service -d`). */
export function inheritedService(fd: number, address: string): SeqpacketServer {
  return new SeqpacketServer(fd, address);
}

export interface ServiceOptions {
  /** serve one connection; the service closes its copy of the connection once this returns */
  worker: (conn: SeqpacketSocket) => void;
  /** stop accepting (the socket is closed; workers already started go on) */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** Accept clients until the signal aborts; each connection is handed to a worker. */
export async function runService(server: SeqpacketServer, opts: ServiceOptions): Promise<void> {
  const stop = () => server.close();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    for (;;) {
      const conn = await server.accept();
      if (!conn) return;
      opts.log?.(`connection from pid ${safePeer(conn)}`);
      try {
        opts.worker(conn);
      } finally {
        conn.close();
      }
    }
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    server.close();
  }
}

function safePeer(conn: SeqpacketSocket): string {
  try {
    const p = conn.peer();
    return `${p.pid} (uid ${p.uid})`;
  } catch {
    return '?';
  }
}

/**
 * The service's end of a worker started ahead of its client: the worker gets `workerFd` (to
 * inherit, then closeWorkerEnd()), waits on it in handedConnection(), and is given the client's
 * connection by give() (SCM_RIGHTS) or told there is none by dismiss().
 */
export interface SpareChannel {
  workerFd: number;
  closeWorkerEnd(): void;
  give(conn: SeqpacketSocket): void;
  dismiss(): void;
}

export function spareChannel(): SpareChannel {
  const [mine, theirs] = seqpacketPair();
  return {
    workerFd: theirs.fd,
    closeWorkerEnd: () => theirs.close(),
    give(conn) {
      try {
        mine.send(Buffer.from('connection'), [conn.fd]);
      } finally {
        mine.close();
      }
    },
    dismiss: () => mine.close(),
  };
}

/** In the worker: the connection handed over the control descriptor, or null when none came. */
export async function handedConnection(control: number): Promise<number | null> {
  const ctl = new SeqpacketSocket(control);
  try {
    const p = await ctl.receive();
    if (!p || p.fds.length !== 1) {
      for (const fd of p?.fds ?? []) closeSync(fd);
      return null;
    }
    return p.fds[0]!;
  } finally {
    ctl.close();
  }
}
