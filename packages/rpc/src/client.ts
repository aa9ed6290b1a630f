/**
 * A typed client of CRIU's RPC, the way pycriu and go-criu drive criu: each request starts
 * `criu swrk 3` on one end of a SOCK_SEQPACKET socketpair (or connects to a `criu service`),
 * sends one criu_req, answers the NOTIFY messages (through an async callback), and returns the
 * final criu_resp. It speaks to crtools' criu and to CRIU's alike.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, constants as fsc } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { seqpacketConnect, seqpacketPair, type SeqpacketSocket } from '@crtools/sys';
import { decodeResponse, encodeRequest, typeName, type CriuFeatures, type CriuOpts, type CriuReq, type CriuResp } from './protocol.js';

/** A NOTIFY from criu: the action point (pre-dump, post-restore, ...) and, for some, the root's pid. */
export interface Notification {
  script: string;
  pid?: number;
}

/**
 * Answer a notification: true to let the operation go on, false (or a throw) to fail it; at
 * query-ext-files, `{ external: [...] }` goes on and names external objects for the dump.
 */
export type NotifyAnswer = boolean | { external: string[] };
export type NotifyHandler = (n: Notification) => NotifyAnswer | Promise<NotifyAnswer>;

export interface CriuClientOptions {
  /** the criu to run: an executable, or a `.js` bin run with this Node (default: `criu` on PATH) */
  criu?: string;
  /** connect to a `criu service` at this socket instead of starting `criu swrk` */
  address?: string;
  /** the worker's stderr (default: ignored) */
  stderr?: 'inherit' | 'ignore';
  /** answers every request's notifications unless the request brings its own (default: all true) */
  onNotify?: NotifyHandler;
}

/** The options of a request: criu_opts, with directories given as paths if wished (opened by the client). */
export type RequestOptions = Omit<CriuOpts, 'images_dir_fd'> & {
  images_dir_fd?: number;
  /** the images directory: opened here and passed as images_dir_fd */
  imagesDir?: string;
  /** the work directory: opened here and passed as work_dir_fd */
  workDir?: string;
};

/** One connection to a criu: its socket, why it went away, how to end it. */
interface Connection {
  sock: SeqpacketSocket;
  whyGone: () => Promise<string>;
  close: () => Promise<void>;
}

/** Send req, answer the notifications, return the final answer. */
async function exchange(c: Connection, req: CriuReq, onNotify: NotifyHandler | undefined): Promise<CriuResp> {
  c.sock.send(encodeRequest(req));
  for (;;) {
    const p = await c.sock.receive();
    if (!p) throw new CrtoolsError('RPC_WORKER_GONE', `${await c.whyGone()} without answering ${typeName(req.type)}`, { exitCode: ExitCode.FAILED });
    const resp = decodeResponse(p.data);
    for (const fd of p.fds) closeSync(fd);
    if (resp.type !== 'NOTIFY') return resp;
    let answer: NotifyAnswer = true;
    try {
      const n = resp.notify ?? {};
      if (onNotify) answer = await onNotify({ script: n.script ?? '', ...(n.pid !== undefined ? { pid: n.pid } : {}) });
    } catch {
      answer = false;
    }
    c.sock.send(encodeRequest(typeof answer === 'object' && answer !== null
      ? { type: 'NOTIFY', notify_success: true, opts: { images_dir_fd: -1, external: answer.external } }
      : { type: 'NOTIFY', notify_success: answer === true }));
  }
}

/**
 * Requests on one connection (keep_open): RESTORE then WAIT_PID for the root it made, for one.
 * The connection ends with close(), or when a request fails (criu closes it then).
 */
export class CriuSession {
  constructor(private readonly c: Connection, private readonly onNotify: NotifyHandler | undefined) {}

  /** A request on this connection, sent with keep_open. */
  request(req: CriuReq, onNotify: NotifyHandler | undefined = this.onNotify): Promise<CriuResp> {
    return exchange(this.c, { ...req, keep_open: true }, onNotify);
  }

  /** RESTORE on this connection: the root is criu's child (unless rst_sibling), for waitPid. */
  async restore(opts: RequestOptions, onNotify?: NotifyHandler): Promise<{ pid: number }> {
    return withOpts(opts, async (o) => {
      const r = await this.request({ type: 'RESTORE', opts: o }, onNotify);
      if (!r.success) throw new RpcError('RESTORE', r);
      return { pid: r.restore?.pid ?? -1 };
    });
  }

  /**
   * PRE_DUMP on this connection: one round of a chain (the tree goes on running, tracked); the
   * connection then takes the next PRE_DUMP or the final DUMP, as CRIU's loop does.
   */
  async preDump(opts: RequestOptions): Promise<void> {
    await withOpts(opts, async (o) => {
      const r = await this.request({ type: 'PRE_DUMP', opts: o });
      if (!r.success) throw new RpcError('PRE_DUMP', r);
    });
  }

  /** DUMP on this connection (after PRE_DUMPs: the final round). */
  async dump(opts: RequestOptions, onNotify?: NotifyHandler): Promise<{ restored: boolean }> {
    return withOpts(opts, async (o) => {
      const r = await this.request({ type: 'DUMP', opts: o }, onNotify);
      if (!r.success) throw new RpcError('DUMP', r);
      return { restored: r.dump?.restored ?? false };
    });
  }

  /** WAIT_PID: wait for a child of this criu; its wait status as waitpid(2) gives it. */
  async waitPid(pid: number): Promise<number> {
    const r = await this.request({ type: 'WAIT_PID', pid });
    if (!r.success) throw new RpcError('WAIT_PID', r);
    return r.status ?? 0;
  }

  close(): Promise<void> {
    return this.c.close();
  }
}

/** A criu_resp with success: false, as an error. */
export class RpcError extends CrtoolsError {
  constructor(readonly request: string, readonly response: CriuResp) {
    super('RPC_FAILED', `${request} failed${response.cr_errmsg ? `: ${response.cr_errmsg.trim()}` : ''}`, {
      exitCode: ExitCode.FAILED,
      context: { cr_errno: response.cr_errno },
    });
  }
}

/** VERSION's answer, with the number clients compare (major*10000 + minor*100 + sublevel). */
export interface CriuVersionInfo {
  major: number;
  minor: number;
  sublevel?: number;
  gitid?: string;
  name?: string;
  number: number;
}

export class CriuClient {
  private readonly criu: string;
  constructor(private readonly opts: CriuClientOptions = {}) {
    this.criu = opts.criu ?? 'criu';
  }

  /**
   * One request on a fresh `criu swrk` (or service connection): the final answer (NOTIFY
   * messages on the way are answered by onNotify). Throws RPC_WORKER_GONE when the worker
   * closes without answering.
   */
  async request(req: CriuReq, onNotify: NotifyHandler | undefined = this.opts.onNotify): Promise<CriuResp> {
    const c = this.connect();
    try {
      return await exchange(c, req, onNotify);
    } finally {
      await c.close();
    }
  }

  /**
   * A connection kept open across requests (each sent with keep_open), as a client needs for
   * WAIT_PID after a RESTORE: the restored root is a child of that one criu. Close it when done.
   */
  session(): CriuSession {
    return new CriuSession(this.connect(), this.opts.onNotify);
  }

  /** A connection: a fresh `criu swrk 3` on a socketpair, or the service's socket. */
  private connect(): Connection {
    if (this.opts.address !== undefined) {
      const sock = seqpacketConnect(this.opts.address);
      return { sock, whyGone: async () => 'the service closed the connection', close: async () => sock.close() };
    }
    const [mine, theirs] = seqpacketPair();
    const js = this.criu.endsWith('.js') || this.criu.endsWith('.mjs');
    const child = spawn(js ? process.execPath : this.criu, [...(js ? [this.criu] : []), 'swrk', '3'], {
      stdio: ['ignore', 'ignore', this.opts.stderr ?? 'ignore', theirs.fd],
    });
    theirs.close();
    const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    return {
      sock: mine,
      async whyGone() {
        const how = await exited;
        return `criu swrk closed the connection (${how.error ? how.error.message : how.signal ? `signal ${how.signal}` : `exit ${how.code}`})`;
      },
      async close() {
        mine.close();
        await exited;
      },
    };
  }

  /** The CRIU version the criu speaks for. */
  async version(): Promise<CriuVersionInfo> {
    const r = await this.request({ type: 'VERSION' });
    if (!r.success || !r.version) throw new RpcError('VERSION', r);
    const v = r.version;
    return {
      major: v.major_number,
      minor: v.minor_number,
      ...(v.sublevel !== undefined ? { sublevel: v.sublevel } : {}),
      ...(v.gitid !== undefined ? { gitid: v.gitid } : {}),
      ...(v.name !== undefined ? { name: v.name } : {}),
      number: v.major_number * 10000 + v.minor_number * 100 + (v.sublevel ?? 0),
    };
  }

  /** CHECK: resolves when the kernel has what criu needs; RpcError otherwise. */
  async check(opts?: RequestOptions): Promise<void> {
    await withOpts(opts, async (o) => {
      const r = await this.request({ type: 'CHECK', ...(o ? { opts: o } : {}) });
      if (!r.success) throw new RpcError('CHECK', r);
    });
  }

  /** FEATURE_CHECK: which of the asked features criu can use (default: ask for all). */
  async featureCheck(features: CriuFeatures = { mem_track: true, lazy_pages: true, pidfd_store: true }): Promise<CriuFeatures> {
    const r = await this.request({ type: 'FEATURE_CHECK', features });
    if (!r.success) throw new RpcError('FEATURE_CHECK', r);
    return r.features ?? {};
  }

  /** DUMP: checkpoint opts.pid into the images directory. */
  async dump(opts: RequestOptions, onNotify?: NotifyHandler): Promise<{ restored: boolean }> {
    return withOpts(opts, async (o) => {
      const r = await this.request({ type: 'DUMP', opts: o }, onNotify ?? this.opts.onNotify);
      if (!r.success) throw new RpcError('DUMP', r);
      return { restored: r.dump?.restored ?? false };
    });
  }

  /** RESTORE: the images into running tasks; the restored root's pid. */
  async restore(opts: RequestOptions, onNotify?: NotifyHandler): Promise<{ pid: number }> {
    return withOpts(opts, async (o) => {
      const r = await this.request({ type: 'RESTORE', opts: o }, onNotify ?? this.opts.onNotify);
      if (!r.success) throw new RpcError('RESTORE', r);
      return { pid: r.restore?.pid ?? -1 };
    });
  }

  /** SINGLE_PRE_DUMP: one pre-dump round on a connection of its own (the tree goes on running, tracked). */
  async preDump(opts: RequestOptions): Promise<void> {
    await withOpts(opts, async (o) => {
      const r = await this.request({ type: 'SINGLE_PRE_DUMP', opts: o });
      if (!r.success) throw new RpcError('SINGLE_PRE_DUMP', r);
    });
  }

  /**
   * PAGE_SERVER (detached) or PAGE_SERVER_CHLD (a child of the criu that started it): a page
   * server for one dump into opts' images directory (ps.port 0: one the kernel picks); it
   * listens once this resolves with its pid and port.
   */
  async pageServer(opts: RequestOptions, child = false): Promise<{ pid: number; port: number }> {
    return withOpts(opts, async (o) => {
      const type = child ? 'PAGE_SERVER_CHLD' : 'PAGE_SERVER';
      const r = await this.request({ type, opts: o });
      if (!r.success) throw new RpcError(type, r);
      return { pid: r.ps?.pid ?? -1, port: r.ps?.port ?? 0 };
    });
  }

  /** CPUINFO_DUMP: this CPU into cpuinfo.img in the images directory. */
  async cpuinfoDump(opts: RequestOptions): Promise<void> {
    await withOpts(opts, async (o) => {
      const r = await this.request({ type: 'CPUINFO_DUMP', opts: o });
      if (!r.success) throw new RpcError('CPUINFO_DUMP', r);
    });
  }

  /** CPUINFO_CHECK: resolves when the image's cpuinfo.img fits this CPU (under opts.cpu_cap); RpcError otherwise. */
  async cpuinfoCheck(opts: RequestOptions): Promise<void> {
    await withOpts(opts, async (o) => {
      const r = await this.request({ type: 'CPUINFO_CHECK', opts: o });
      if (!r.success) throw new RpcError('CPUINFO_CHECK', r);
    });
  }
}

/** criu_opts from RequestOptions, the directories given as paths open while `fn` runs. */
async function withOpts<T>(opts: RequestOptions | undefined, fn: (o: CriuOpts | undefined) => Promise<T>): Promise<T> {
  if (!opts) return fn(undefined);
  const held: number[] = [];
  const dirFd = (p: string) => {
    const fd = openSync(p, fsc.O_RDONLY | fsc.O_DIRECTORY);
    held.push(fd);
    return fd;
  };
  try {
    const { imagesDir, workDir, ...rest } = opts;
    const o: CriuOpts = { ...rest, images_dir_fd: imagesDir !== undefined ? dirFd(imagesDir) : (rest.images_dir_fd ?? -1) };
    if (workDir !== undefined) o.work_dir_fd = dirFd(workDir);
    return await fn(o);
  } finally {
    for (const fd of held) closeSync(fd);
  }
}
