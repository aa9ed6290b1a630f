import { readdirSync } from 'node:fs';
import { parseError, type ParseOptions } from './errors.js';
import { numericEntries, readProcDir, readProcText, type ProcOptions, type Target } from './read.js';
import { parseStat, type ProcStat } from './stat.js';
import { parseStatus, readStatus, type ProcStatus } from './status.js';

/** Pids of the processes this /proc shows, ascending. */
export function listPids(opts?: ProcOptions): number[] {
  return numericEntries(readdirSync(opts?.procRoot ?? '/proc'));
}

/** Thread ids of a process (/proc/PID/task), ascending. */
export function listTasks(pid: number, opts?: ProcOptions): number[] {
  return numericEntries(readProcDir(pid, 'task', opts));
}

export interface TaskInfo {
  tid: number;
  status: ProcStatus;
  stat: ProcStat;
}

/** Each thread with its own status and stat. A thread that exits meanwhile is left out. */
export function readTasks(pid: number, opts?: ProcOptions): TaskInfo[] {
  const out: TaskInfo[] = [];
  for (const tid of listTasks(pid, opts)) {
    const t: Target = { pid, tid };
    try {
      const st = readProcText(t, 'status', opts);
      const sa = readProcText(t, 'stat', opts);
      out.push({ tid, status: parseStatus(st.text, { path: st.path }), stat: parseStat(sa.text, { path: sa.path }) });
    } catch (e) {
      if ((e as { code?: string }).code === 'NO_SUCH_PROCESS') continue;
      throw e;
    }
  }
  return out;
}

/** Parse a task's children file: space-separated pids. */
export function parseChildren(text: string, opts?: ParseOptions): number[] {
  const t = text.trim();
  if (t === '') return [];
  const parts = t.split(/\s+/);
  for (const p of parts) if (!/^\d+$/.test(p)) throw parseError(opts?.path, 1, 'bad pid', text.trim());
  return parts.map(Number);
}

/**
 * Children of a process: the union over all its threads'
 * /proc/PID/task/TID/children (as CRIU collects them), in order, deduplicated.
 */
export function readChildren(pid: number, opts?: ProcOptions): number[] {
  const seen = new Set<number>();
  for (const tid of listTasks(pid, opts)) {
    let text: string;
    let path: string;
    try {
      ({ text, path } = readProcText({ pid, tid }, 'children', opts));
    } catch (e) {
      if ((e as { code?: string }).code === 'NO_SUCH_PROCESS') continue;
      throw e;
    }
    for (const c of parseChildren(text, { path })) seen.add(c);
  }
  return [...seen];
}

/**
 * The ids a task has in its innermost pid namespace (the last of status' NSpid, NSpgid, NSsid;
 * 0 where the group or session lives outside that namespace). Without NSpid (an old kernel)
 * the ids this /proc shows.
 */
export function innermostIds(target: Target, opts?: ProcOptions): { pid: number; pgid: number; sid: number } {
  const st = readStatus(target, opts);
  const last = (l: number[] | undefined): number | undefined => (l?.length ? l[l.length - 1] : undefined);
  const pid = last(st.NSpid);
  if (pid === undefined) {
    const s = readProcText(target, 'stat', opts);
    const ps = parseStat(s.text, { path: s.path });
    return { pid: typeof target === 'number' ? target : target.tid, pgid: ps.pgrp, sid: ps.session };
  }
  return { pid, pgid: last(st.NSpgid) ?? 0, sid: last(st.NSsid) ?? 0 };
}

/**
 * Every thread of the tree under `root` (root included), by its tid in its innermost pid
 * namespace → its tid in this /proc's. A task that exits meanwhile is left out.
 */
export function treeInnermostTids(root: number, opts?: ProcOptions): Map<number, number> {
  const out = new Map<number, number>();
  const todo = [root];
  while (todo.length) {
    const pid = todo.shift()!;
    try {
      for (const tid of listTasks(pid, opts)) out.set(innermostIds({ pid, tid }, opts).pid, tid);
      todo.push(...readChildren(pid, opts));
    } catch (e) {
      if ((e as { code?: string }).code !== 'NO_SUCH_PROCESS') throw e;
    }
  }
  return out;
}
