/**
 * The restore engine: images → plan → restorer, as a function of the one options model
 * (CriuOptions) and a context (notify hook, where errors go).
 */
import { fstatSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { validateCpuinfoImage } from '@crtools/cpuinfo';
import { writeImageFile } from '@crtools/images';
import { CPU_CAP, cpuCapNames, PAGE_SIZE, CriuLog, criuOptions, CrtoolsError, ExitCode, nowMs, refuseUnsupported, type CriuOptionName, type CriuOptions, type InheritFd, type Notify } from '@crtools/common';
import { punchRanges } from '@crtools/pagemap';
import { readStat } from '@crtools/procfs';
import { restoreTree, waitRoot } from './launch.js';
import { buildRestorePlan } from './plan/build.js';
import { requireLazyPages } from './lazy-pages.js';
import { LazyPagesClient, readLazySplits, type LazySplit } from './lazy-socket.js';
import type { RestorePlan } from './plan.js';
import { dumpLockOf, TcpConnections } from './tcp.js';
import type { NetworkLock } from '@crtools/files/plan';
import type { MadeNetNamespace } from './netns.js';
import { namespacesFirst } from './userns.js';
import { joinedPlan, joinNamespaces, type JoinedFd, type JoinedNamespaces } from './join-ns.js';
import { RestoreErrorCode, restoreError } from './errors.js';
import { setSocketNamespace } from '@crtools/sys';
import { cgroupMode, prepareCgroups, type MadeCgroups } from './cgroups.js';
import { cgroupsOf } from './plan/cgroups.js';
import { rootedPlan } from './rooted.js';
import { checkExternalMounts } from './mounts.js';
import { restoreExternals } from './net-externals.js';
import { reopenInherited } from './inherit-reopen.js';
import { shellTerminal } from './shell-terminal.js';

/** The CriuOptions fields a restore carries out; any other set away from its default is refused by name. */
export const RESTORE_OPTIONS: readonly CriuOptionName[] = [
  'images_dir', 'work_dir', 'log_file', 'log_level', 'leave_stopped', 'shell_job', 'file_locks', 'cpu_cap', 'inherit_fd',
  'rst_sibling', 'restore_detached', 'pidfile', 'notify_scripts', 'display_stats', 'tcp_established', 'tcp_close', 'tcp_skip_in_flight', 'network_lock', 'lazy_pages', 'ext_unix_sk', 'auto_dedup',
  'root', 'ext_mnt', 'auto_ext_mnt', 'ext_masters', 'ext_sharing', 'veths', 'external', 'manage_cgroups', 'manage_cgroups_mode', 'cg_root', 'cgroup_yard', 'empty_ns', 'join_ns', 'evasive_devices', 'orphan_pts_master', 'enable_fs',
  // (a dump's option: a linked remap in the images is opened and its name removed either way, as CRIU)
  'link_remap',
  'skip_file_rwx_check',
];

/**
 * --shell-job as CRIU does it: the root's session, led from outside the checkpoint, becomes
 * criu's own (every task of that session moves), and so does its process group when the root
 * did not lead one. Without the option such a root is refused unless criu is in that session.
 */
export function shellJobPlan(plan: RestorePlan, own: { sid: number; pgid: number }, shellJob: boolean): RestorePlan {
  const root = plan.tasks[0]!;
  if (root.sid === root.pid) return plan;
  if (!shellJob) {
    if (root.sid === own.sid) return plan;
    throw new CrtoolsError('RESTORE_SHELL_JOB', `the root task ${root.pid} was not a session leader (session ${root.sid}); restore it with --shell-job`, { exitCode: ExitCode.FAILED });
  }
  const clash = (id: number, what: string) => {
    for (const t of plan.tasks) {
      if (t.pid === id || t.sid === id || (what === 'session' && t.pgid === id)) {
        throw new CrtoolsError('RESTORE_SHELL_JOB', `--shell-job: criu's ${what} ${id} is also a pid, session or group of the checkpoint (task ${t.pid})`, { exitCode: ExitCode.FAILED });
      }
    }
  };
  const sidMap = new Map<number, number>();
  const pgidMap = new Map<number, number>();
  if (root.sid !== own.sid) {
    clash(own.sid, 'session');
    sidMap.set(root.sid, own.sid);
    pgidMap.set(root.sid, own.sid);
  }
  if (root.pgid !== root.pid && root.pgid !== own.pgid) {
    if (own.pgid !== own.sid) clash(own.pgid, 'group');
    pgidMap.set(root.pgid, own.pgid);
  }
  return {
    ...plan,
    tasks: plan.tasks.map((t) => ({ ...t, sid: sidMap.get(t.sid) ?? t.sid, pgid: pgidMap.get(t.pgid) ?? t.pgid })),
  };
}

/**
 * --root: the plan's paths reached through the new root until the tasks are restored; without
 * a mount namespace of the tree's own, --root has nothing to build there (refused).
 */
function rootPlan(plan: RestorePlan, root: string | undefined, ext: ReadonlyMap<string, string>): RestorePlan {
  if (!root) return plan;
  if (!plan.namespaces?.mounts) throw new CrtoolsError('UNSUPPORTED_OPTION', 'restore: option root: the tree has no mount namespace of its own to make under it (not supported by crtools yet)', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'root' } });
  checkExternalMounts(plan.namespaces.mounts, root, ext);
  return rootedPlan(plan, root);
}


/** This process's session and process group. */
function ownSession(): { sid: number; pgid: number } {
  const st = readStat(process.pid);
  return { sid: st.session, pgid: st.pgrp };
}

/** The inherited descriptors by the resource they stand in for; each must be open here. */
export function inheritMap(values: readonly InheritFd[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { key, fd } of values) {
    try {
      fstatSync(fd);
    } catch {
      throw new CrtoolsError('USAGE', `--inherit-fd fd[${fd}]:${key}: descriptor ${fd} is not open`, { exitCode: ExitCode.USAGE });
    }
    // a terminal's key must come with a terminal (a number the caller did not pass may be one
    // of this process's own descriptors: node's epoll, eventfd, pipes)
    if (key.startsWith('tty[') && !process.getBuiltinModule('node:tty').isatty(fd)) {
      let what = '?';
      try {
        what = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        /* gone */
      }
      throw new CrtoolsError('USAGE', `--inherit-fd fd[${fd}]:${key}: descriptor ${fd} is not a terminal (${what}): was it passed to criu?`, { exitCode: ExitCode.USAGE });
    }
    out.set(key, fd);
  }
  return out;
}

/** What a restore is run with besides its options. */
export interface RestoreContext {
  /** called at CRIU's action points ('pre-restore', 'post-restore', 'post-resume'); a throw fails the restore */
  notify?: Notify;
  /** where log lines go when there is no log file and -v3 or more was asked (default: nowhere) */
  err?: (line: string) => void;
  timeoutMs?: number;
  /** aborted: the restore stops at its next safe point, the tasks it started killed (RestoreTreeOptions.signal) */
  signal?: AbortSignal;
  /** called once every task runs (the restore can no longer be called off), before the root is waited for */
  resumed?: () => void;
  /** with display_stats: called with the statistics once the tasks run (before waiting for the root), as CRIU prints them then */
  displayStats?: (stats: RestoreStats) => void;
}

/** What stats-restore holds (CRIU's restore_stats_entry): counts in pages, times in microseconds. */
export interface RestoreStats {
  pages_compared: bigint;
  pages_skipped_cow: bigint;
  forking_time: number;
  restore_time: number;
  pages_restored: bigint;
}

export interface RestoreResult {
  rootPid: number;
  pids: number[];
  /** also written to stats-restore in the work directory */
  stats: RestoreStats;
  /** without restore_detached (and not a sibling): how the root ended, as a shell's exit code */
  exitCode?: number;
}

/** Restore the checkpoint in `options.images_dir`; waits for the root unless detached. */
export async function restore(options: Partial<CriuOptions>, ctx: RestoreContext = {}): Promise<RestoreResult> {
  const o = criuOptions(options);
  refuseUnsupported(o, 'restore', RESTORE_OPTIONS);
  const dir = resolve(o.images_dir);
  const work = o.work_dir ? resolve(o.work_dir) : dir;
  if (o.work_dir) mkdirSync(work, { recursive: true }); // as the dump does
  const rel = (p: string): string => (isAbsolute(p) ? p : join(work, p));
  // (as CRIU, which works in its work directory: a relative --cgroup-yard is taken from there)
  if (o.cgroup_yard) o.cgroup_yard = rel(o.cgroup_yard);
  if (o.log_file) writeFileSync(rel(o.log_file), '');
  const criuLog = new CriuLog(o.log_level, o.log_file ? rel(o.log_file) : undefined, ctx.err);
  try {
    return await restoreWith(o, ctx, dir, rel, criuLog);
  } catch (e) {
    // as CRIU: the failure is an Error line of the log too
    criuLog.error('restore', e instanceof Error ? e.message : String(e));
    throw e;
  } finally {
    criuLog.close();
  }
}

/** A hook whose failure CRIU reports and goes on after (pre-resume, post-resume). */
async function goingOn(criuLog: CriuLog, hook: () => unknown): Promise<void> {
  try {
    await hook();
  } catch (e) {
    criuLog.errorGoingOn('restore', e instanceof Error ? e.message : String(e));
  }
}

async function restoreWith(o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog): Promise<RestoreResult> {
  const t0 = nowMs();
  const log = criuLog.logger('restore');
  const notify: Notify = o.notify_scripts && ctx.notify ? ctx.notify : () => undefined;
  log.info(`Restoring from ${dir}`);
  // (where a restore's fixed cost goes: the log's times start here, after Node's start-up)
  if (criuLog.level >= 4) log.debug(`restore: this process started ${(process.uptime() * 1000).toFixed(1)} ms ago; wall clock ${new Date().toISOString()}`);
  // as CRIU: with --cpu-cap (the image bit), cpuinfo.img must be there and fit this CPU
  if (o.cpu_cap & CPU_CAP.IMAGE) {
    await validateCpuinfoImage(dir, o.cpu_cap, { logger: log });
    log.info(`cpu: cpuinfo.img fits this CPU (--cpu-cap ${cpuCapNames(o.cpu_cap)})`);
  }
  const inherit = inheritMap(o.inherit_fd);
  // --lazy-pages: the daemon must be there before any task is made (as CRIU, in the work directory)
  if (o.lazy_pages) requireLazyPages();
  const lazy = o.lazy_pages ? LazyPagesClient.connect(o.work_dir ? resolve(o.work_dir) : dir) : undefined;
  if (lazy) log.debug('lazy-pages: connected to the daemon');
  try {
    return await restoreLaunched(o, ctx, dir, rel, criuLog, t0, inherit, lazy);
  } finally {
    lazy?.close();
  }
}

async function restoreLaunched(o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog, t0: number, inherit: ReturnType<typeof inheritMap>, lazy: LazyPagesClient | undefined): Promise<RestoreResult> {
  // the dumped cgroups, as --manage-cgroups says, before anything of the tree is looked at (as
  // CRIU: a file the tree holds may be in a cgroup directory the restore makes)
  const cgroups = prepareCgroups(await cgroupsOf(dir, undefined), cgroupMode(o), { roots: o.cg_root, ...(o.cgroup_yard ? { yard: o.cgroup_yard } : {}) }, criuLog.logger('cg'));
  try {
    return await restorePlanned(o, ctx, dir, rel, criuLog, t0, inherit, lazy, cgroups);
  } catch (e) {
    cgroups.undo();
    throw e;
  } finally {
    cgroups.release();
  }
}

async function restorePlanned(
  o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog, t0: number, inherit: ReturnType<typeof inheritMap>, lazy: LazyPagesClient | undefined,
  cgroups: MadeCgroups,
): Promise<RestoreResult> {
  const log = criuLog.logger('restore');
  const root = o.root ? resolve(o.root) : undefined;
  // (--external, --ext-mount-map, --veth-pair: the network devices' and the mounts' externals)
  const ext = restoreExternals(o);
  // (our daemon left its lazy splits beside its socket: the pagemaps it walked, not walked again
  // here; read when the first task's pagemap is)
  let splits: Map<number, LazySplit> | undefined | null = null;
  const work = o.work_dir ? resolve(o.work_dir) : dir;
  const lazySplit = lazy ? (pid: number) => (splits === null ? (splits = readLazySplits(work)) : splits)?.get(pid) : undefined;
  const jobPlan = shellJobPlan(await buildRestorePlan(dir, { logger: log, inherit, shellJob: o.shell_job, lazy: o.lazy_pages, ...(lazySplit ? { lazySplit } : {}), extUnixSk: o.ext_unix_sk, skipFileRwxCheck: o.skip_file_rwx_check, emptyNs: o.empty_ns, netExternals: ext, ...(root ? { root } : {}) }), ownSession(), o.shell_job);
  log.debug(`restore plan: ready (${jobPlan.tasks.length} task(s))`);
  // (-j: the shell's terminal, outside the tree, is one of the restore's)
  const terminal = shellTerminal(jobPlan);
  try {
    // (--inherit-fd of a pipe: opened again with its recorded flags)
    const reopened = reopenInherited(terminal.plan);
    try {
      return await restoreShellPlanned(o, ctx, dir, rel, criuLog, t0, lazy, cgroups, reopened.plan, ext);
    } finally {
      reopened.close();
    }
  } finally {
    terminal.close();
  }
}

async function restoreShellPlanned(
  o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog, t0: number, lazy: LazyPagesClient | undefined,
  cgroups: MadeCgroups, built: RestorePlan, ext: ReturnType<typeof restoreExternals>,
): Promise<RestoreResult> {
  const log = criuLog.logger('restore');
  const root = o.root ? resolve(o.root) : undefined;
  // --orphan-pts-master: a pty master whose slave is outside the tree goes to the caller; a tree
  // with a terminal is not carried so yet (a tree without one has none to send)
  if (o.orphan_pts_master) {
    const tty = built.files.find((f) => f.kind === 'tty');
    if (tty) throw new CrtoolsError('UNSUPPORTED_OPTION', 'restore: option orphan_pts_master: a tree with a terminal is not restored so by crtools yet', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'orphan_pts_master' } });
  }
  const rooted = rootPlan(built, root, ext.mounts);
  // --join-ns: the root is born in the namespaces given, not in new ones of those kinds
  const joined = joinNamespaces(o.join_ns ?? [], o.empty_ns, log);
  try {
    const j = joined ? joinedPlan(rooted, joined, { ...(root ? { root } : {}), restoreSibling: o.rst_sibling }) : undefined;
    // (the network namespace dumped, joined again: the dump's lock of it is lifted with the connections')
    const dumpLock = joined?.net && rooted.namespaces?.net ? await dumpLockOf(dir, joined.net.path, criuLog.logger('net')) : undefined;
    return await restoreJoined(o, ctx, dir, rel, criuLog, t0, lazy, cgroups, j?.plan ?? rooted, joined, j?.check, dumpLock);
  } finally {
    joined?.close();
  }
}

async function restoreJoined(
  o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog, t0: number, lazy: LazyPagesClient | undefined,
  cgroups: MadeCgroups, planned: RestorePlan, joined: JoinedNamespaces | undefined, joinedCheck: ((rootPid: number) => void) | undefined, dumpLock?: NetworkLock,
): Promise<RestoreResult> {
  // established TCP connections: made here in repair mode, handed to their tasks as inherited descriptors
  const tcp = new TcpConnections(criuLog.logger('tcp'));
  // a tree in a network namespace of its own: the namespace first, its connections made inside it
  // (a joined one: the tree's, as it is); a tree with a user namespace of its own: that first,
  // the network one made in it
  const first = namespacesFirst(planned, { userns: criuLog.logger('userns'), net: criuLog.logger('net') }, { restoreSibling: !!o.rst_sibling, ...(joined?.net ? { net: joined.net } : {}) });
  try {
    return await restoreInside(o, ctx, dir, rel, criuLog, t0, lazy, first.plan, tcp, first.net, cgroups, [...(joined?.fds ?? []), ...first.joins], joinedCheck, dumpLock);
  } finally {
    first.close();
  }
}

async function restoreInside(
  o: CriuOptions, ctx: RestoreContext, dir: string, rel: (p: string) => string, criuLog: CriuLog, t0: number, lazy: LazyPagesClient | undefined,
  planned: RestorePlan, tcp: TcpConnections, net: MadeNetNamespace | undefined, cgroups: MadeCgroups, joinNs: JoinedFd[], joinedCheck: ((rootPid: number) => void) | undefined,
  dumpLock: NetworkLock | undefined,
): Promise<RestoreResult> {
  const log = criuLog.logger('restore');
  const notify: Notify = o.notify_scripts && ctx.notify ? ctx.notify : () => undefined;
  let plan: RestorePlan;
  setSocketNamespace(net?.path);
  try {
    plan = await tcp.prepare(planned, dir, o, net?.path, dumpLock);
  } finally {
    setSocketNamespace(undefined);
  }
  let tree: Awaited<ReturnType<typeof restoreTree>>;
  try {
    // (as CRIU: no task exists yet, so no pid; the root's pid as the scripts see it, in the
    // restorer's pid namespace, comes with setup-namespaces, not the pid its images hold)
    await notify('pre-restore', {});
    tree = await restoreTree(plan, {
      cgroups,
      ...(o.root ? { mountRoot: { root: resolve(o.root), ext: restoreExternals(o).mounts } } : {}),
      // as CRIU: once the root's namespaces exist (the caller may configure them: runc's network),
      // and once they have their state
      namespaceHook: async (stage, rootPid) => {
        await notify(stage === 'made' ? 'setup-namespaces' : 'post-setup-namespaces', { pid: rootPid });
      },
      // the connections of the network namespaces below the root's, made in them once they are
      nestedSockets: (p, netPath) => tcp.prepareNested(p, o, netPath),
      leaveStopped: o.leave_stopped,
      restoreSibling: o.rst_sibling,
      timeoutMs: ctx.timeoutMs,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      // (the per-thread xsave check is the fpu rule's, image or not)
      skipCpuCheck: !(o.cpu_cap & CPU_CAP.FPU),
      logger: log,
      // as CRIU: every task restored and not yet resumed; a failing post-restore kills the tree,
      // a failing pre-resume is an error line and the tasks go on
      beforeResume: async (rootPid) => {
        await notify('post-restore', { pid: rootPid });
        // (as CRIU: with a network namespace of the tree's; what the hook answers changes nothing)
        if (net) await goingOn(criuLog, () => notify('network-unlock', {}));
        await goingOn(criuLog, () => notify('pre-resume', { pid: rootPid }));
        // as CRIU: the lock goes first, then the connections leave repair mode (the window probe
        // that sends reaches the peer, which then stops backing off), before any task runs
        tcp.unlock();
        if (dumpLock) {
          dumpLock.quietly(() => dumpLock.unlockNamespace());
        }
        tcp.leaveRepair();
      },
      ...(lazy ? { lazyHandOver: (tasks: { pid: number; uffd: number | undefined }[]) => lazy.handOver(tasks) } : {}),
      ...(net ? { netns: net } : {}),
      ...(joinNs.length ? { joinNs } : {}),
      ...(joinedCheck ? { joinedCheck } : {}),
    });
  } catch (e) {
    tcp.abandon();
    cgroups.undo();
    throw e;
  } finally {
    // (every task is in its cgroups now, or the restore failed and what it made is gone: the
    // yard's mounts go before the tree runs on, or the root is waited for)
    cgroups.release();
  }
  log.debug('restore: every task resumed');
  ctx.resumed?.();
  if (lazy) {
    // the tasks run; their missing pages come from the daemon, which has every userfaultfd
    try {
      lazy.finish();
    } catch (e) {
      criuLog.errorGoingOn('restore', e instanceof Error ? e.message : String(e));
    }
  }
  log.info(`Restored ${tree.pids.length} task(s), root ${tree.rootPid}`);
  // the tasks run: a failing post-resume cannot undo anything (an error line, as CRIU's)
  await goingOn(criuLog, () => notify('post-resume', { pid: tree.rootPid }));
  if (o.pidfile) writeFileSync(rel(o.pidfile), `${tree.rootPid}`);
  // --auto-dedup (criu.8: on restore, the pages read are punched out of the images): every page
  // the plan read back is in the tasks now; the vDSO's and vvar's, which the kernel gave the
  // tasks afresh, are no longer needed either. Lazy pages are not runs (lazyRanges): the lazy-pages daemon
  // serves them from the images after this
  if (o.auto_dedup) {
    const runs = [...plan.tasks.flatMap((t) => [...t.pages, ...(t.kernelPages ?? [])].map((r) => ({ r, file: r.path ?? t.pagesPath }))), ...(plan.shmem ?? []).flatMap((sh) => sh.pages.map((r) => ({ r, file: r.path })))];
    const bytes = await punchRanges(runs.filter((x) => x.file !== undefined).map(({ r, file }) => ({ path: resolve(dir, file!), offset: Number(r.offset), length: Number(r.npages) * PAGE_SIZE })));
    log.info(`auto-dedup: ${bytes} bytes of pages punched out of the images`);
  }
  // stats-restore as CRIU writes it, in the work directory (pages: every page the plan put back)
  const pages = plan.tasks.reduce((n, t) => t.pages.reduce((m, p) => m + p.npages, n), 0n) + (plan.shmem ?? []).reduce((n, s) => s.pages.reduce((m, p) => m + p.npages, n), 0n);
  // (as CRIU counts: pages restored are those written, not those left shared with the parent)
  const stats: RestoreStats = {
    pages_compared: BigInt(tree.pagesCompared), pages_skipped_cow: BigInt(tree.pagesShared), forking_time: tree.forkingUs,
    restore_time: Math.round((nowMs() - t0) * 1000), pages_restored: pages - BigInt(tree.pagesShared),
  };
  try {
    await writeImageFile(rel('stats-restore'), { magic: 'STATS', entries: [{ restore: stats }] });
  } catch (e) {
    // the tasks run already: a work directory that takes no file costs the stats only (as CRIU)
    log.warn(`cannot write stats-restore: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (o.display_stats) ctx.displayStats?.(stats);
  const done = { rootPid: tree.rootPid, pids: tree.pids, stats };
  if (o.restore_detached || o.rst_sibling || !tree.isChild) return done;
  const st = await waitRoot(tree.rootPid);
  log.info(`Root task ${tree.rootPid} finished: ${st.signal ? `signal ${st.signal}` : `code ${st.code}`}`);
  return { ...done, exitCode: st.signal ? 128 + st.signal : st.code };
}
