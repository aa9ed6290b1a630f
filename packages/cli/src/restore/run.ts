/**
 * The core of `criu restore`: images → plan → restorer, as a function of options and io
 * (no process spawning), returning the exit code.
 */
import { appendFileSync, fstatSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CrtoolsError, ExitCode, type Logger } from '@crtools/common';
import { restoreTree, waitRoot, type RestorePlan } from '@crtools/restorer';
import { buildRestorePlan } from './plan-from-images.js';

export interface RestoreOptions {
  imagesDir: string;
  workDir?: string;
  detached?: boolean;
  sibling?: boolean;
  leaveStopped?: boolean;
  pidfile?: string;
  logFile?: string;
  /** CRIU's -v0..-v4 */
  verbosity?: number;
  timeoutMs?: number;
  /** CRIU's --cpu-cap list; 'none' skips the CPU compatibility check */
  cpuCap?: string;
  /** CRIU's --inherit-fd fd[N]:resource, each as given */
  inheritFd?: string[];
  /** CRIU's -j/--shell-job: a root that was a shell's job joins criu's session (and group) */
  shellJob?: boolean;
}

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

/** This process's session and process group (/proc/self/stat). */
function ownSession(): { sid: number; pgid: number } {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { pgid: Number(f[2]), sid: Number(f[3]) };
}

/** Parse --inherit-fd values (fd[N]:resource) into resource → N; each N must be open here. */
export function parseInheritFd(values: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values) {
    const m = /^fd\[(\d+)\]:(.+)$/.exec(v);
    if (!m) throw new CrtoolsError('USAGE', `invalid --inherit-fd argument: ${v} (fd[N]:resource)`, { exitCode: ExitCode.USAGE });
    const fd = Number(m[1]);
    try {
      fstatSync(fd);
    } catch {
      throw new CrtoolsError('USAGE', `--inherit-fd ${v}: descriptor ${fd} is not open`, { exitCode: ExitCode.USAGE });
    }
    out.set(m[2]!, fd);
  }
  return out;
}

export interface RestoreIo {
  err: (line: string) => void;
}

/** A logger honouring CRIU's levels (0 none, 1 errors, 2 warnings, 3 info, 4 debug) into a file or stderr. */
export function levelLogger(level: number, sink: (line: string) => void): Logger {
  const at = (n: number, tag: string) => (...a: unknown[]) => {
    if (level >= n) sink(`(${(performance.now() / 1000).toFixed(6)}) ${tag}${a.map(String).join(' ')}`);
  };
  return { error: at(1, 'Error: '), warn: at(2, 'Warn: '), info: at(3, ''), debug: at(4, '') };
}

export async function runRestore(o: RestoreOptions, io: RestoreIo): Promise<number> {
  const dir = resolve(o.imagesDir);
  const work = o.workDir ? resolve(o.workDir) : dir;
  const rel = (p: string): string => (isAbsolute(p) ? p : join(work, p));
  const level = o.verbosity ?? 2;
  const log = o.logFile
    ? levelLogger(level, (l) => appendFileSync(rel(o.logFile!), l + '\n'))
    : levelLogger(Math.min(level, 4), io.err);
  if (o.logFile) writeFileSync(rel(o.logFile), '');
  log.info(`Restoring from ${dir}`);
  const inherit = parseInheritFd(o.inheritFd ?? []);
  const plan = shellJobPlan(await buildRestorePlan(dir, { logger: log, inherit }), ownSession(), !!o.shellJob);
  const tree = await restoreTree(plan, {
    leaveStopped: o.leaveStopped,
    restoreSibling: o.sibling,
    timeoutMs: o.timeoutMs,
    skipCpuCheck: (o.cpuCap ?? '').split(',').includes('none'),
    logger: log,
  });
  log.info(`Restored ${tree.pids.length} task(s), root ${tree.rootPid}`);
  if (o.pidfile) writeFileSync(rel(o.pidfile), `${tree.rootPid}`);
  if (o.detached || o.sibling || !tree.isChild) return ExitCode.OK;
  const st = await waitRoot(tree.rootPid);
  log.info(`Root task ${tree.rootPid} finished: ${st.signal ? `signal ${st.signal}` : `code ${st.code}`}`);
  return st.signal ? 128 + st.signal : st.code;
}
