import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { critBin, criuBin, workloadBinDir } from '../lib/paths.js';
import { REFERENCE_CRIT, referenceCritUsable } from '@crtools/common/testing';

export const CRIT = REFERENCE_CRIT.crit;
export const haveCrit = referenceCritUsable();

/** A workload started by a test: it detached itself (not our child) and wrote its pid. */
export interface Workload {
  pid: number;
  state: string;
  /** Ask for a verdict (SIGUSR1) and return the "check ..." line. */
  check(timeoutMs?: number): string;
  kill(): void;
}

const started: number[] = [];

export function tmp(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `crtools-dump-${prefix}-`));
}

export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Ask a workload for its verdict: clear its state file, send SIGUSR1 and wait for the "check …"
 * line (what the file holds at the timeout otherwise).
 */
export function askVerdict(state: string, pid: number, timeoutMs = 5000): string {
  writeFileSync(state, '');
  process.kill(pid, 'SIGUSR1');
  return waitVerdict(state, timeoutMs);
}

/** Wait for a "check …" line in the state file (what the file holds at the timeout otherwise). */
export function waitVerdict(state: string, timeoutMs = 5000): string {
  const end = Date.now() + timeoutMs;
  let now = '';
  while (Date.now() < end) {
    now = readState(state);
    if (now.startsWith('check')) return now;
    sleep(10);
  }
  return now;
}

/** The state file's content, '' while it does not exist. */
export function readState(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Start test/.build/NAME ARGS... STATEFILE (or launch STATEFILE PROGRAM... when name is 'launch'). */
export function startWorkload(name: string, args: string[], dir = tmp(name), wrap: string[] = []): Workload {
  const state = path.join(dir, `${name}.state`);
  const bin = path.join(workloadBinDir, name);
  const argv = name === 'launch' || name === 'nslaunch' ? [state, ...args] : [...args, state];
  // wrap: a command the workload is started through (nsenter --net=FILE: in that namespace)
  const r = wrap.length ? spawnSync(wrap[0]!, [...wrap.slice(1), bin, ...argv], { stdio: 'ignore', timeout: 10_000 }) : spawnSync(bin, argv, { stdio: 'ignore', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${name} did not start (status ${r.status})`);
  let line = '';
  for (let i = 0; i < 500 && !line.startsWith('ready'); i++) {
    sleep(10);
    line = readState(state);
  }
  const m = /pid=(\d+)/.exec(line);
  if (!m) throw new Error(`${name} never became ready: '${line}'`);
  const pid = Number(m[1]);
  started.push(pid);
  // the other processes the ready line names (a=A child=C leader=L ...), which a restore may have
  // left outside pid's tree (an orphan under a subreaper or init): killed at the end too, when
  // they still run the workload's program
  for (const [, v] of line.matchAll(/\b\w+=(\d+)\b/g)) if (Number(v) > 1 && Number(v) !== pid) named.set(Number(v), bin);
  return {
    pid,
    state,
    check(timeoutMs = 5000) {
      return askVerdict(state, pid, timeoutMs);
    },
    kill() {
      killTree(pid);
    },
  };
}

/** Direct children of pid (every thread's), [] once it is gone. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
      for (const w of text.split(/\s+/)) if (w) out.push(Number(w));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** SIGKILL a process and its descendants, by pid. */
/** All pids of a tree, root first. */
export function treePids(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(treePids)];
}

export function killTree(pid: number): void {
  for (const c of childrenOf(pid)) killTree(c);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

export function killAllStarted(): void {
  for (const p of started.splice(0)) killTree(p);
  for (const [p, bin] of [...named]) {
    named.delete(p);
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${p}/exe`);
    } catch {
      continue;
    }
    if (exe === bin) killTree(p);
  }
}

/** pids the started workloads' ready lines named besides their own → the workload's program */
const named = new Map<number, string>();

export function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(st);
  } catch {
    return false;
  }
}

export function waitGone(pid: number, ms = 3000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    sleep(10);
  }
  return !alive(pid);
}

/** Kill the tree at `root` by pid (its tasks read first) and expect every one of them gone. */
export function killTreeAndWait(root: number): void {
  const pids = treePids(root);
  killTree(root);
  for (const p of pids) expect(waitGone(p)).toBe(true);
}

export function procStatus(pid: number): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) o[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return o;
}

export function criu(args: string[], timeoutMs = 120_000, env?: Record<string, string>) {
  const r = spawnSync(process.execPath, [criuBin, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The dump of tree `pid` is refused by name: `--check-only` names it first, a dump exits 4 with
 * it as its one line (images under tmp(`name`-check) and tmp(`name`)).
 */
export function expectDumpRefused(pid: number, want: RegExp, name: string): void {
  const c = criu(['dump', '--check-only', '-t', String(pid), '-D', tmp(`${name}-check`), '-o', 'check.log']);
  expect(c.code, c.stderr).toBe(4);
  expect(c.stderr.trim().split('\n')[0]).toMatch(want);
  const d = criu(['dump', '-t', String(pid), '-D', tmp(name), '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(4);
  expect(d.stderr.trim()).toMatch(want);
}

/** Decode an image with Debian's crit; returns the parsed JSON. */
export function critDecode(file: string): any {
  const r = spawnSync(REFERENCE_CRIT.python, [CRIT, 'decode', '-i', file], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`crit decode ${file} failed: ${r.stderr.split('\n').filter(Boolean).pop()}`);
  return JSON.parse(r.stdout);
}

/**
 * The image file as the reference crit gives it back after `decode --pretty` and `encode` (what
 * CRIU's test/others/crit does to every image of a dump and compares with cmp).
 */
export function critReencode(file: string): Buffer {
  const d = spawnSync(REFERENCE_CRIT.python, [CRIT, 'decode', '-i', file, '--pretty'], { timeout: 60_000, maxBuffer: 256 << 20 });
  if (d.status !== 0) throw new Error(`crit decode ${file} failed: ${d.stderr.toString().split('\n').filter(Boolean).pop()}`);
  const e = spawnSync(REFERENCE_CRIT.python, [CRIT, 'encode'], { input: d.stdout, timeout: 60_000, maxBuffer: 256 << 20 });
  if (e.status !== 0) throw new Error(`crit encode of ${file} failed: ${e.stderr.toString().split('\n').filter(Boolean).pop()}`);
  return e.stdout;
}

/** Decode every image in dir (pages-*.img are raw: only their size is checked against the pagemap). */
export function decodeAll(dir: string): Record<string, any> {
  const out: Record<string, any> = {};
  for (const f of readdirSync(dir)) {
    if (f.startsWith('pages-') || f.endsWith('.log')) continue;
    out[f] = critDecode(path.join(dir, f));
  }
  return out;
}

/** Decode with our own crit (knows CRIU 4.x fields Debian's 3.17 lacks, e.g. pagemap nr_pages). */
export function ourCritDecode(file: string): any {
  const r = spawnSync(process.execPath, [critBin, 'decode', '-i', file], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`crit decode ${file} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** Wait until the pid is free again (the process exited and was reaped, e.g. by init). */
export function waitReaped(pid: number, ms = 5000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!existsSync(`/proc/${pid}`)) return true;
    sleep(10);
  }
  return !existsSync(`/proc/${pid}`);
}
