/**
 * One function per request type: a criu_req (and the connection, for notifications) in, the
 * criu_resp to send out. A handler never throws for a failed operation: the failure is the
 * answer (success: false, cr_errmsg, cr_errno).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CPU_CAP_DEFAULT, CRIU_VERSION, CriuLog, CrtoolsError, ExitCode, type Notify, type NotifyAction } from '@crtools/common';
import { checkCpuinfoImage, writeCpuinfoImage } from '@crtools/cpuinfo';
import { dump, preDump } from '@crtools/dump';
import { judge, loadKerndat, type Kerndat } from '@crtools/kerndat';
import { restore, waitRoot } from '@crtools/restorer';
import { checkDirAccess, checkDumpAccess, checkRestoreAccess, needsAccessCheck, type Peer } from './access.js';
import { EBADRQC, ECHILD, failureFields, logEnd, logFailure, logFailureOnce } from './failure.js';
import { isSelfDump, mapOptions, type ConfigReader, type MapContext, type MappedOptions } from './options.js';
import type { CriuFeatures, CriuReq, CriuResp } from './protocol.js';

/** What a handler may use of the connection and the server. */
export interface HandlerContext {
  /** the client (SO_PEERCRED): whose descriptors the request names, and what it may ask */
  peer: Peer;
  /** criu swrk (rst_sibling, inherit_fd allowed) rather than criu service */
  swrk: boolean;
  /** the inode of our end of the connection (CRIU's service_sk_ino): what a self-dump's client socket is connected to */
  serviceSkIno?: number;
  /** send a NOTIFY and wait for the client's answer: its NOTIFY request to go on, undefined when it said no or left */
  notify: (script: string, pid: number | undefined) => Promise<CriuReq | undefined>;
  /** where a request's log goes with log_to_stderr */
  stderr: (line: string) => void;
  config?: ConfigReader;
  /** the kernel facts for CHECK (default: the kerndat cache, probed when missing) */
  kerndat?: () => Kerndat;
  /** starts a page server in a process of its own (the cli's `criu page-server`); without it PAGE_SERVER is refused */
  startPageServer?: StartPageServer;
}

/** What PAGE_SERVER / PAGE_SERVER_CHLD need of the cli: a page server serving in a process of its own, listening once this resolves. */
export type StartPageServer = (o: {
  dir: string; address?: string | undefined; port: number; prevImagesDir?: string | undefined; autoDedup?: boolean | undefined;
  workDir?: string | undefined; logFile?: string | undefined; logLevel: number; detached: boolean;
}) => Promise<{ pid: number; port: number }>;

const ownVersion = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** VERSION: the CRIU release crtools implements (clients compute major*10000 + minor*100 + sublevel). */
export function handleVersion(): CriuResp {
  return {
    type: 'VERSION',
    success: true,
    version: {
      major_number: CRIU_VERSION.major,
      minor_number: CRIU_VERSION.minor,
      ...(CRIU_VERSION.sublevel ? { sublevel: CRIU_VERSION.sublevel } : {}),
      name: `crtools ${ownVersion}`,
    },
  };
}

/**
 * FEATURE_CHECK: CRIU answers every feature, true where the kernel has it. crtools answers
 * true only for what it also carries out: memory tracking where kerndat found a dirty-tracking
 * method (soft-dirty, or uffd-wp + PAGEMAP_SCAN); lazy pages where userfaultfd has the
 * fork/remap/remove/unmap events (`criu check --feature uffd-noncoop`); not a pidfd store
 * (pre-dump's pid-reuse check).
 */
const FEATURES: Record<keyof CriuFeatures, (k: () => Kerndat) => boolean> = {
  mem_track: (k) => { const m = k().mem_dirty_track_method; return m === 'soft-dirty' || m === 'uffd-wp'; },
  lazy_pages: (k) => judge(k(), { feature: 'uffd-noncoop' }).exitCode === 0,
  pidfd_store: () => false,
};

export function handleFeatureCheck(req: CriuReq, ctx?: Pick<HandlerContext, 'kerndat'>): CriuResp {
  const asked = req.features ?? {};
  const features: CriuFeatures = {};
  const kd = ctx?.kerndat ?? (() => loadKerndat().kerndat);
  for (const [name, has] of Object.entries(FEATURES) as [keyof CriuFeatures, (k: () => Kerndat) => boolean][]) {
    features[name] = !!asked[name] && has(kd);
  }
  return { type: 'FEATURE_CHECK', success: true, features };
}

/** CHECK: what `criu check` says of this kernel (the required features). */
export function handleCheck(req: CriuReq, ctx: HandlerContext): CriuResp {
  let mapped: MappedOptions | undefined;
  try {
    mapped = mapOptions(req.opts, { command: 'check', peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config, logFailure });
    const o = mapped.options;
    const log = new CriuLog(o.log_level ?? 2, mapped.logPath, ctx.stderr);
    try {
      const k = (ctx.kerndat ?? (() => loadKerndat().kerndat))();
      const r = judge(k, { category: ['required'] });
      for (const l of r.stderr) log.error('check', l);
      for (const l of r.stdout) log.info(l);
      if (r.exitCode === 0) return { type: 'CHECK', success: true };
      return { type: 'CHECK', success: false, cr_errmsg: r.stderr[0] ?? 'the kernel lacks what crtools needs' };
    } finally {
      log.close();
    }
  } catch (e) {
    return { type: 'CHECK', success: false, ...failureFields(e) };
  } finally {
    mapped?.release();
  }
}

/** Where the engines' notify hook meets the client: each action a NOTIFY, answered by the client. */
function notifier(ctx: HandlerContext): Notify {
  return async (action: NotifyAction, info) => {
    // (as CRIU: the pid goes with the actions that have the restored root to tell)
    const pid = action === 'post-restore' || action === 'setup-namespaces' ? info.pid : undefined;
    const answer = await ctx.notify(action, pid);
    if (!answer) throw new NotifyRefused(action);
    // query-ext-files: the answer may name external objects (criu_opts.external)
    if (action === 'query-ext-files' && answer.opts?.external?.length) return { external: [...answer.opts.external] };
    return undefined;
  };
}

/** The client answered a NOTIFY with a failure (or went away): the operation fails. */
export class NotifyRefused extends Error {
  readonly code = 'RPC_NOTIFY_REFUSED';
  constructor(readonly action: string) {
    super(`the RPC client reported a failure at ${action}`);
  }
}

/**
 * The frame every operation on images shares: the request's options mapped (descriptors held
 * for its life), the access a non-root client has checked, and any failure turned into the
 * answer with the first error line its log gained.
 */
async function operation(
  type: 'DUMP' | 'RESTORE' | 'CPUINFO_DUMP' | 'CPUINFO_CHECK' | 'PRE_DUMP' | 'SINGLE_PRE_DUMP' | 'PAGE_SERVER' | 'PAGE_SERVER_CHLD',
  command: MapContext['command'],
  req: CriuReq,
  ctx: HandlerContext,
  failed: Partial<CriuResp>,
  run: (mapped: MappedOptions) => Promise<CriuResp>,
): Promise<CriuResp> {
  let mapped: MappedOptions | undefined;
  let from = 0;
  try {
    mapped = mapOptions(req.opts, { command, peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config, logFailure, ...(ctx.serviceSkIno !== undefined ? { serviceSkIno: ctx.serviceSkIno } : {}) });
    from = logEnd(mapped.logPath);
    return await run(mapped);
  } catch (e) {
    const failure = failureFields(e, { path: mapped?.logPath, from });
    logFailureOnce(mapped?.logPath, mapped?.options.log_level ?? 2, from, e);
    return { type, success: false, ...failed, ...failure };
  } finally {
    mapped?.release();
  }
}

/** A client that is not root writes only into its own directories, and dumps only its own tree (`tree`). */
function checkWriteAccess(ctx: HandlerContext, o: MappedOptions['options'], tree: boolean): void {
  if (!needsAccessCheck(ctx.peer)) return;
  checkDirAccess(ctx.peer, o.images_dir, 'images directory');
  checkDirAccess(ctx.peer, o.work_dir, 'work directory');
  if (tree) checkDumpAccess(ctx.peer, o.pid!);
}

/** Is pid this process or one of its ancestors (its tree holds us)? */
export function isOwnAncestor(pid: number, self = process.pid): boolean {
  for (let p = self, hops = 0; p > 0 && hops < 4096; hops++) {
    if (p === pid) return true;
    let ppid: number;
    try {
      ppid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return false;
    }
    p = ppid;
  }
  return false;
}

/**
 * DUMP: the tree in opts.pid into the images directory. Without pid the client dumps itself
 * (CRIU's self-dump): its connection to us is recorded as the socket it reads its answer from
 * once restored (restored: true). The answer here (restored: false) goes out as CRIU's does:
 * when the client was left running, or the dump failed; a self-dump that killed the client
 * has nobody to answer (null).
 */
export async function handleDump(req: CriuReq, ctx: HandlerContext): Promise<CriuResp | null> {
  const self = isSelfDump(req.opts);
  let leftRunning = false;
  const resp = await operation('DUMP', 'dump', req, ctx, { dump: { restored: false } }, async ({ options: o }) => {
    if (self && isOwnAncestor(ctx.peer.pid)) {
      // (criu swrk is its client's child: it would be inside the tree it dumps, which CRIU fails
      // too, with the words this message starts with, which clients look for: CRIU's
      // test/others/rpc/config_file.py does)
      throw new CrtoolsError('RPC_SELF_DUMP_INSIDE', `The criu itself is within dumped tree: a dump without pid (the client ${ctx.peer.pid} dumping itself) from a client this criu (pid ${process.pid}) runs under, as criu swrk does, is not supported; a client dumps itself through criu service`, {
        exitCode: ExitCode.UNSUPPORTED, context: { pid: ctx.peer.pid, option: 'pid' },
      });
    }
    if (self && o.notify_scripts) {
      // (the client is frozen from the dump's first notification after the freeze on: it could
      // never answer, and CRIU 4.2 waits for it forever)
      throw new CrtoolsError('RPC_SELF_DUMP_NOTIFY', 'notify_scripts: a dump without pid (the client dumping itself) with notifications is not supported: the client is frozen while the dump waits for its answers', {
        exitCode: ExitCode.UNSUPPORTED, context: { pid: ctx.peer.pid, option: 'notify_scripts' },
      });
    }
    leftRunning = !!o.leave_running;
    checkWriteAccess(ctx, o, true);
    await dump(o, { notify: notifier(ctx), stderr: ctx.stderr });
    return { type: 'DUMP', success: true, dump: { restored: false } };
  });
  return self && resp.success && !leftRunning ? null : resp;
}

/**
 * PRE_DUMP / SINGLE_PRE_DUMP: the tree's memory copied while it runs, as `criu pre-dump` (the
 * tree always left running, its memory tracked for the next round). The answer is the bare
 * type and success, as CRIU's. After a PRE_DUMP the connection stays for the next PRE_DUMP or
 * the final DUMP (the server's loop); a SINGLE_PRE_DUMP is one request like any other.
 */
export function handlePreDump(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  const type = req.type === 'SINGLE_PRE_DUMP' ? 'SINGLE_PRE_DUMP' : 'PRE_DUMP';
  return operation(type, 'pre-dump', req, ctx, {}, async ({ options: o }) => {
    checkWriteAccess(ctx, o, true);
    await preDump({ ...o, track_mem: true }, { stderr: ctx.stderr });
    return { type, success: true };
  });
}

/**
 * PAGE_SERVER (a daemon in a session of its own) / PAGE_SERVER_CHLD (a child of this criu): a
 * page server for one dump, receiving into the images directory (parent_img: linked as the
 * previous round; auto_dedup), listening on ps.address:ps.port (a port the kernel picks when 0)
 * before the answer goes out; the answer carries its pid and port (criu_page_server_info).
 */
export function handlePageServer(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  const type = req.type === 'PAGE_SERVER_CHLD' ? 'PAGE_SERVER_CHLD' : 'PAGE_SERVER';
  return operation(type, 'page-server', req, ctx, {}, async ({ options: o }) => {
    checkWriteAccess(ctx, o, false);
    if (!ctx.startPageServer) throw new CrtoolsError('RPC_UNSUPPORTED', `${type}: this server starts no page servers`, { exitCode: ExitCode.UNSUPPORTED });
    // (the directories the request named are held by this worker only: the server gets their paths)
    const real = (d: string | undefined) => (d === undefined ? undefined : realpathSync(d));
    const ps = await ctx.startPageServer({
      dir: real(o.images_dir)!, address: o.ps?.address || undefined, port: o.ps?.port ?? 0, prevImagesDir: o.parent_img, autoDedup: o.auto_dedup,
      workDir: real(o.work_dir), logFile: o.log_file, logLevel: o.log_level ?? 2, detached: type === 'PAGE_SERVER',
    });
    // (CRIU answers PAGE_SERVER under its own type, whichever of the two was asked)
    return { type: 'PAGE_SERVER', success: true, ps: { pid: ps.pid, port: ps.port } };
  });
}

/** RESTORE: the images into running tasks; the answer carries the root's pid. */
export function handleRestore(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  return operation('RESTORE', 'restore', req, ctx, { restore: { pid: -1 } }, async ({ options: o }) => {
    if (needsAccessCheck(ctx.peer)) {
      checkDirAccess(ctx.peer, o.work_dir ?? o.images_dir, 'work directory');
      checkRestoreAccess(ctx.peer, o.images_dir!);
    }
    const r = await restore(o, { notify: notifier(ctx), err: ctx.stderr });
    return { type: 'RESTORE', success: true, restore: { pid: r.rootPid } };
  });
}

/**
 * CPUINFO_DUMP / CPUINFO_CHECK: cpuinfo.img written into the images directory, or checked
 * against this CPU under cpu_cap (the default rules when the request sets none).
 */
export function handleCpuinfo(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  const type = req.type === 'CPUINFO_DUMP' ? 'CPUINFO_DUMP' : 'CPUINFO_CHECK';
  return operation(type, 'cpuinfo', req, ctx, {}, async ({ options: o, logPath }) => {
    if (needsAccessCheck(ctx.peer)) checkDirAccess(ctx.peer, o.images_dir, 'images directory');
    const log = new CriuLog(o.log_level ?? 2, logPath, ctx.stderr);
    try {
      if (type === 'CPUINFO_DUMP') {
        log.info(`cpu: ${await writeCpuinfoImage(o.images_dir!)} written`);
      } else {
        const img = await checkCpuinfoImage(o.images_dir!, o.cpu_cap ?? CPU_CAP_DEFAULT, { logger: log.logger('cpu') });
        log.info(`cpu: the image's CPU (${img.vendor_id} family ${img.cpu_family} model ${img.model}) fits this one`);
      }
    } catch (e) {
      log.error('cpu', e instanceof Error ? e.message : String(e));
      throw e;
    } finally {
      log.close();
    }
    return { type, success: true };
  });
}

/**
 * WAIT_PID: wait for req.pid, a child of this criu (a task restored without rst_sibling on a
 * kept-open connection), and answer its wait status as waitpid(2) gives it.
 */
export async function handleWaitPid(req: CriuReq): Promise<CriuResp> {
  const pid = req.pid ?? 0;
  try {
    if (!Number.isInteger(pid) || pid <= 0) throw Object.assign(new Error(`WAIT_PID: bad pid ${pid}`), { errno: ECHILD });
    const st = await waitRoot(pid);
    // (the status word: the signal in the low bits, else the exit code in the second byte)
    const status = st.signal ? st.signal & 0x7f : (st.code & 0xff) << 8;
    return { type: 'WAIT_PID', success: true, status };
  } catch (e) {
    const { cr_errno } = failureFields(e);
    return { type: 'WAIT_PID', success: false, cr_errno: cr_errno ?? ECHILD, cr_errmsg: `Unable to wait ${pid}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Request types crtools does not carry out yet, and where they are tracked. */
const NOT_YET: Record<string, number> = {};

/**
 * Anything else: refused by name, the connection kept. What is no request at all (EMPTY, a
 * NOTIFY sent as one, an unknown number) is answered as CRIU answers it, with type EMPTY
 * (CRIU's test/others/rpc/errno.py expects that).
 */
export function handleUnsupported(req: CriuReq): CriuResp {
  const t = req.type;
  const issue = typeof t === 'string' ? NOT_YET[t] : undefined;
  const noRequest = typeof t === 'number' || t === 'EMPTY' || t === 'NOTIFY';
  const what = typeof t === 'number' ? `request type ${t} is unknown` : noRequest ? `a ${t} request is not a request crtools serves here` : `${t} is not supported by crtools yet${issue ? ` (crtools issue ${issue})` : ''}`;
  return { type: noRequest ? 'EMPTY' : t, success: false, cr_errno: EBADRQC, cr_errmsg: what };
}
