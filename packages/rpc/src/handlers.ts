/**
 * One function per request type: a criu_req (and the connection, for notifications) in, the
 * criu_resp to send out. A handler never throws for a failed operation: the failure is the
 * answer (success: false, cr_errmsg, cr_errno).
 */
import { createRequire } from 'node:module';
import { CPU_CAP_DEFAULT, CRIU_VERSION, CriuLog, type Notify, type NotifyAction } from '@crtools/common';
import { checkCpuinfoImage, writeCpuinfoImage } from '@crtools/cpuinfo';
import { dump } from '@crtools/dump';
import { judge, loadKerndat, type Kerndat } from '@crtools/kerndat';
import { restore, waitRoot } from '@crtools/restorer';
import { checkDirAccess, checkDumpAccess, checkRestoreAccess, needsAccessCheck, type Peer } from './access.js';
import { EBADRQC, ECHILD, failureFields, logEnd, logFailure, logFailureOnce } from './failure.js';
import { mapOptions, type ConfigReader, type MapContext, type MappedOptions } from './options.js';
import type { CriuFeatures, CriuReq, CriuResp } from './protocol.js';

/** What a handler may use of the connection and the server. */
export interface HandlerContext {
  /** the client (SO_PEERCRED): whose descriptors the request names, and what it may ask */
  peer: Peer;
  /** criu swrk (rst_sibling, inherit_fd allowed) rather than criu service */
  swrk: boolean;
  /** send a NOTIFY and wait for the client's answer: its NOTIFY request to go on, undefined when it said no or left */
  notify: (script: string, pid: number | undefined) => Promise<CriuReq | undefined>;
  /** where a request's log goes with log_to_stderr */
  stderr: (line: string) => void;
  config?: ConfigReader;
  /** the kernel facts for CHECK (default: the kerndat cache, probed when missing) */
  kerndat?: () => Kerndat;
}

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
 * true only for what it also carries out; today none of the three: memory tracking
 * (pre-dump, issue 16), lazy pages (issue 16), a pidfd store (pre-dump's pid-reuse check).
 */
const FEATURES: Record<keyof CriuFeatures, { implemented: boolean }> = {
  mem_track: { implemented: false },
  lazy_pages: { implemented: false },
  pidfd_store: { implemented: false },
};

export function handleFeatureCheck(req: CriuReq): CriuResp {
  const asked = req.features ?? {};
  const features: CriuFeatures = {};
  for (const [name, f] of Object.entries(FEATURES) as [keyof CriuFeatures, { implemented: boolean }][]) {
    features[name] = !!asked[name] && f.implemented;
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
  type: 'DUMP' | 'RESTORE' | 'CPUINFO_DUMP' | 'CPUINFO_CHECK',
  command: MapContext['command'],
  req: CriuReq,
  ctx: HandlerContext,
  failed: Partial<CriuResp>,
  run: (mapped: MappedOptions) => Promise<CriuResp>,
): Promise<CriuResp> {
  let mapped: MappedOptions | undefined;
  let from = 0;
  try {
    mapped = mapOptions(req.opts, { command, peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config, logFailure });
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

/** DUMP: the tree in opts.pid into the images directory. */
export function handleDump(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  return operation('DUMP', 'dump', req, ctx, { dump: { restored: false } }, async ({ options: o }) => {
    if (needsAccessCheck(ctx.peer)) {
      checkDirAccess(ctx.peer, o.images_dir, 'images directory');
      checkDirAccess(ctx.peer, o.work_dir, 'work directory');
      checkDumpAccess(ctx.peer, o.pid!);
    }
    await dump(o, { notify: notifier(ctx), stderr: ctx.stderr });
    // restored: only a self-dump comes back restored, and crtools does none
    return { type: 'DUMP', success: true, dump: { restored: false } };
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
const NOT_YET: Record<string, number> = {
  PRE_DUMP: 16, SINGLE_PRE_DUMP: 16, PAGE_SERVER: 16, PAGE_SERVER_CHLD: 16,
};

/** Anything else: refused by name, the connection kept. */
export function handleUnsupported(req: CriuReq): CriuResp {
  const t = req.type;
  const issue = typeof t === 'string' ? NOT_YET[t] : undefined;
  const what = typeof t === 'number' ? `request type ${t} is unknown` : t === 'EMPTY' || t === 'NOTIFY' ? `a ${t} request is not a request crtools serves here` : `${t} is not supported by crtools yet${issue ? ` (crtools issue ${issue})` : ''}`;
  return { type: typeof t === 'number' ? 'EMPTY' : t, success: false, cr_errno: EBADRQC, cr_errmsg: what };
}
