/**
 * One function per request type: a criu_req (and the connection, for notifications) in, the
 * criu_resp to send out. A handler never throws for a failed operation: the failure is the
 * answer (success: false, cr_errmsg, cr_errno).
 */
import { createRequire } from 'node:module';
import { CRIU_VERSION, CriuLog, type Notify, type NotifyAction } from '@crtools/common';
import { dump } from '@crtools/dump';
import { judge, loadKerndat, type Kerndat } from '@crtools/kerndat';
import { restore } from '@crtools/restorer';
import { checkDirAccess, checkDumpAccess, checkRestoreAccess, needsAccessCheck, type Peer } from './access.js';
import { EBADRQC, failureFields, logEnd } from './failure.js';
import { mapOptions, type ConfigReader, type MappedOptions } from './options.js';
import type { CriuFeatures, CriuReq, CriuResp } from './protocol.js';

/** What a handler may use of the connection and the server. */
export interface HandlerContext {
  /** the client (SO_PEERCRED): whose descriptors the request names, and what it may ask */
  peer: Peer;
  /** criu swrk (rst_sibling, inherit_fd allowed) rather than criu service */
  swrk: boolean;
  /** send a NOTIFY and wait for the client's answer: true to go on */
  notify: (script: string, pid: number | undefined) => Promise<boolean>;
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
    mapped = mapOptions(req.opts, { command: 'check', peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config });
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
    if (!(await ctx.notify(action, pid))) {
      throw new NotifyRefused(action);
    }
  };
}

/** The client answered a NOTIFY with a failure (or went away): the operation fails. */
export class NotifyRefused extends Error {
  readonly code = 'RPC_NOTIFY_REFUSED';
  constructor(readonly action: string) {
    super(`the RPC client reported a failure at ${action}`);
  }
}

/** DUMP: the tree in opts.pid into the images directory. */
export async function handleDump(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  let mapped: MappedOptions | undefined;
  let from = 0;
  try {
    mapped = mapOptions(req.opts, { command: 'dump', peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config });
    from = logEnd(mapped.logPath);
    if (needsAccessCheck(ctx.peer)) {
      checkDirAccess(ctx.peer, mapped.options.images_dir, 'images directory');
      checkDirAccess(ctx.peer, mapped.options.work_dir, 'work directory');
      checkDumpAccess(ctx.peer, mapped.options.pid!);
    }
    await dump(mapped.options, { notify: notifier(ctx), stderr: ctx.stderr });
    // restored: only a self-dump comes back restored, and crtools does none
    return { type: 'DUMP', success: true, dump: { restored: false } };
  } catch (e) {
    return { type: 'DUMP', success: false, dump: { restored: false }, ...failureFields(e, { path: mapped?.logPath, from }) };
  } finally {
    mapped?.release();
  }
}

/** RESTORE: the images into running tasks; the answer carries the root's pid. */
export async function handleRestore(req: CriuReq, ctx: HandlerContext): Promise<CriuResp> {
  let mapped: MappedOptions | undefined;
  let from = 0;
  try {
    mapped = mapOptions(req.opts, { command: 'restore', peerPid: ctx.peer.pid, swrk: ctx.swrk, config: ctx.config });
    from = logEnd(mapped.logPath);
    if (needsAccessCheck(ctx.peer)) {
      checkDirAccess(ctx.peer, mapped.options.work_dir ?? mapped.options.images_dir, 'work directory');
      checkRestoreAccess(ctx.peer, mapped.options.images_dir!);
    }
    const r = await restore(mapped.options, { notify: notifier(ctx), err: ctx.stderr });
    return { type: 'RESTORE', success: true, restore: { pid: r.rootPid } };
  } catch (e) {
    return { type: 'RESTORE', success: false, restore: { pid: -1 }, ...failureFields(e, { path: mapped?.logPath, from }) };
  } finally {
    mapped?.release();
  }
}

/** Request types crtools does not carry out yet, and where they are tracked. */
const NOT_YET: Record<string, number> = {
  PRE_DUMP: 16, SINGLE_PRE_DUMP: 16, PAGE_SERVER: 16, PAGE_SERVER_CHLD: 16, CPUINFO_DUMP: 12, CPUINFO_CHECK: 12, WAIT_PID: 13,
};

/** Anything else: refused by name, the connection kept. */
export function handleUnsupported(req: CriuReq): CriuResp {
  const t = req.type;
  const issue = typeof t === 'string' ? NOT_YET[t] : undefined;
  const what = typeof t === 'number' ? `request type ${t} is unknown` : t === 'EMPTY' || t === 'NOTIFY' ? `a ${t} request is not a request crtools serves here` : `${t} is not supported by crtools yet${issue ? ` (crtools issue ${issue})` : ''}`;
  return { type: typeof t === 'number' ? 'EMPTY' : t, success: false, cr_errno: EBADRQC, cr_errmsg: what };
}
