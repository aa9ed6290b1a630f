/**
 * The core of `criu restore`: images → plan → restorer, as a function of options and io
 * (no process spawning), returning the exit code.
 */
import { appendFileSync, fstatSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CrtoolsError, ExitCode, type Logger } from '@crtools/common';
import { restoreTree, waitRoot } from '@crtools/restorer';
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
  const plan = await buildRestorePlan(dir, { logger: log, inherit });
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
