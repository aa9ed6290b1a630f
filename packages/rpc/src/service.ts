/**
 * `criu service`: a listening SOCK_SEQPACKET socket; each accepted client is served by a worker
 * of its own (the caller decides what a worker is: the cli starts `criu swrk` on the connection
 * in service mode), so that requests of different clients never share a process, its ptrace
 * state or its descriptors.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { preloadNativeAddons } from '@crtools/common';
import { compileDecoders, getSchema } from '@crtools/images';
import { dump } from '@crtools/dump';
import { loadKerndat } from '@crtools/kerndat';
import { restore, waitRoot } from '@crtools/restorer';
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

/**
 * What a request will load on first use, loaded ahead: the native addons, the image schema with
 * its decoders compiled, and the kernel facts (a worker waiting for its client has the time;
 * its client has not).
 */
export function prepareWorker(): void {
  preloadNativeAddons();
  compileDecoders(getSchema().messages.values());
  try {
    loadKerndat();
  } catch {
    /* the request that needs it reports it */
  }
}

/**
 * A rehearsal, for a worker with time before its client: a `sleep` of its own is dumped and
 * restored once, in a private directory, then killed and reaped, so that the code a client's
 * dump and restore run has run once (compiled and optimized by V8, every lazy part loaded).
 * Whatever fails is left at that: the child is killed by pid, the directory removed.
 */
export async function rehearse(): Promise<void> {
  if (!existsSync(REHEARSAL_SLEEP)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'crtools-rehearsal-'));
  const quiet = () => undefined;
  let pid: number | undefined;
  let restored: number | undefined;
  try {
    const child = spawn(REHEARSAL_SLEEP, ['60'], { detached: true, stdio: 'ignore' });
    // (its end may be reaped by our own waits as its tracer, never told to Node: the handle
    // must not keep this process alive)
    child.unref();
    pid = child.pid;
    if (pid === undefined) return;
    // (spawn returns before the exec: dump the sleep, not the forked Node)
    for (let i = 0; i < 500 && readComm(pid) !== 'sleep'; i++) await pause(2);
    await dump({ pid, images_dir: dir, log_level: 0 }, { stderr: quiet });
    // killed by the dump: reaped here (or by Node first), its pid free again
    await waitRoot(pid).catch(() => undefined);
    for (let i = 0; i < 1000 && existsSync(`/proc/${pid}`); i++) await pause(2);
    if (existsSync(`/proc/${pid}`)) return;
    pid = undefined;
    restored = (await restore({ images_dir: dir, restore_detached: true, log_level: 0 }, { err: quiet })).rootPid;
  } catch {
    /* a rehearsal only */
  } finally {
    for (const p of [pid, restored]) {
      if (p === undefined) continue;
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
      await waitRoot(p).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const REHEARSAL_SLEEP = '/bin/sleep';
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * In the worker: the connection handed over the control descriptor, or null when none came.
 * Before it waits, it prepares (prepareWorker) and, if asked, rehearses (rehearse).
 */
export async function handedConnection(control: number, opts: { rehearse?: boolean } = {}): Promise<number | null> {
  const ctl = new SeqpacketSocket(control);
  try {
    prepareWorker();
    if (opts.rehearse) await rehearse();
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
