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

/** Answer a notification: true to let the operation go on, false (or a throw) to fail it. */
export type NotifyHandler = (n: Notification) => boolean | Promise<boolean>;

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
   * One request on a fresh `criu swrk`: the final answer (NOTIFY messages on the way are
   * answered by onNotify). Throws RPC_WORKER_GONE when the worker closes without answering.
   */
  async request(req: CriuReq, onNotify: NotifyHandler | undefined = this.opts.onNotify): Promise<CriuResp> {
    if (this.opts.address !== undefined) {
      const sock = seqpacketConnect(this.opts.address);
      return this.exchange(sock, req, onNotify, async () => 'the service closed the connection').finally(() => sock.close());
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
    try {
      return await this.exchange(mine, req, onNotify, async () => {
        const how = await exited;
        return `criu swrk closed the connection (${how.error ? how.error.message : how.signal ? `signal ${how.signal}` : `exit ${how.code}`})`;
      });
    } finally {
      mine.close();
      await exited;
    }
  }

  /** Send req, answer the notifications, return the final answer. */
  private async exchange(sock: SeqpacketSocket, req: CriuReq, onNotify: NotifyHandler | undefined, whyGone: () => Promise<string>): Promise<CriuResp> {
    sock.send(encodeRequest(req));
    for (;;) {
      const p = await sock.receive();
      if (!p) throw new CrtoolsError('RPC_WORKER_GONE', `${await whyGone()} without answering ${typeName(req.type)}`, { exitCode: ExitCode.FAILED });
      const resp = decodeResponse(p.data);
      for (const fd of p.fds) closeSync(fd);
      if (resp.type !== 'NOTIFY') return resp;
      let ok = true;
      try {
        const n = resp.notify ?? {};
        ok = onNotify ? (await onNotify({ script: n.script ?? '', ...(n.pid !== undefined ? { pid: n.pid } : {}) })) === true : true;
      } catch {
        ok = false;
      }
      sock.send(encodeRequest({ type: 'NOTIFY', notify_success: ok }));
    }
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
    await this.withOpts(opts, async (o) => {
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
    return this.withOpts(opts, async (o) => {
      const r = await this.request({ type: 'DUMP', opts: o }, onNotify ?? this.opts.onNotify);
      if (!r.success) throw new RpcError('DUMP', r);
      return { restored: r.dump?.restored ?? false };
    });
  }

  /** RESTORE: the images into running tasks; the restored root's pid. */
  async restore(opts: RequestOptions, onNotify?: NotifyHandler): Promise<{ pid: number }> {
    return this.withOpts(opts, async (o) => {
      const r = await this.request({ type: 'RESTORE', opts: o }, onNotify ?? this.opts.onNotify);
      if (!r.success) throw new RpcError('RESTORE', r);
      return { pid: r.restore?.pid ?? -1 };
    });
  }

  /** criu_opts from RequestOptions, the directories given as paths open while `fn` runs. */
  private async withOpts<T>(opts: RequestOptions | undefined, fn: (o: CriuOpts | undefined) => Promise<T>): Promise<T> {
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
}
