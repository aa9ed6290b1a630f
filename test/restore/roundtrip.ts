/**
 * The suite's round-trip harness: dump a workload, restore it, hold the restored tree to the
 * state fingerprint taken before the dump (crtools-inspect), and do it twice in a row (round 1
 * dumps the tree round 0 restored). Every test file of a kind of state uses it, so the
 * fingerprint equality holds for every round trip of the suite.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET, type ExpectedChange, type Fingerprint } from '@crtools/inspect';
import { criu, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { criuBin, repoRoot } from '../lib/paths.js';

const INSPECT = path.join(repoRoot, 'packages/inspect/bin/crtools-inspect.js');

/**
 * For a program that keeps changing its own state as it runs (a JVM's malloc arenas grow): the
 * fingerprint before is taken by a post-dump action script, while the dump holds the tree
 * frozen (images written, parasite gone), and the one after on the tree restored stopped
 * (`restore -s`), which is then continued. Only its tracer differs.
 */
const FROZEN_PRINT: ExpectedChange[] = [
  { path: /^tasks\[\d+\]\.status\.TracerPid$/, why: 'the fingerprint before was taken while the dump held the tree frozen: the dump was its tracer' },
];

function frozenPrintScript(dir: string): { script: string; print: string } {
  const print = path.join(dir, 'frozen-print.json');
  const script = path.join(dir, 'frozen-print.sh');
  writeFileSync(script, `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\nexec ${process.execPath} ${INSPECT} "$CRTOOLS_INIT_PID" > ${print}\n`);
  chmodSync(script, 0o755);
  return { script, print };
}

/** Pids of trees restored by a round trip that has not ended: `afterEach(killRestored)` in each file. */
const restored: number[] = [];

/** Kill (by pid) what a failed round trip left restored. */
export function killRestored(): void {
  for (const p of restored.splice(0)) killTree(p);
}

/**
 * Restore detached, with a level-4 log in the image directory: a restore that hangs until the
 * timeout kills it (no exit code, nothing on stderr) has the log's last lines put on its stderr,
 * so a failure seen once on CI says where the restore stood. (A restore that fails says why on
 * its stderr itself, which tests compare as it is.)
 */
/** Restore dir (restoreDir, `--pidfile` in it), which must succeed; the restored root's pid (a tree's own pid namespace: its pid outside). */
export function restoreRoot(dir: string, extra: string[] = []): number {
  const pidfile = path.join(dir, 'root.pid');
  const r = restoreDir(dir, [...extra, '--pidfile', pidfile]);
  expect(r.code, r.stderr).toBe(0);
  return Number(readFileSync(pidfile, 'utf8'));
}

export function restoreDir(dir: string, extra: string[] = [], fds: number[] = []) {
  // (no log where there is no directory to hold it: the tests of a missing one)
  const log = existsSync(dir) ? ['-v4', '-o', 'restore.log'] : [];
  // fds: descriptors of ours the restore gets as its 3, 4... (for --inherit-fd)
  const s = spawnSync(process.execPath, [criuBin, 'restore', '-D', dir, '-d', ...log, ...extra], { encoding: 'utf8', timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe', ...fds] });
  const r = { code: s.status, stdout: s.stdout, stderr: s.stderr };
  if (r.code !== null) return r;
  let tail = '';
  try {
    tail = readFileSync(path.join(dir, 'restore.log'), 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    tail = '(no restore.log)';
  }
  return { ...r, stderr: `${r.stderr}\n--- killed by ${s.signal}${s.signal === 'SIGTERM' ? ' (the timeout)' : ''}; restore.log, last lines:\n${tail}` };
}

/**
 * The task's address ranges. Adjacent private anonymous areas with the same protection are
 * joined: the kernel keeps them apart only while they belong to different anon_vma objects
 * (e.g. across a fork), and freshly mapped ones merge, which changes nothing the task can see.
 */
export function mapsOf(pid: number): string[] {
  const out: { start: string; end: string; anonKey?: string }[] = [];
  for (const l of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean)) {
    const f = l.split(/\s+/);
    const [start, end] = f[0]!.split('-') as [string, string];
    const anonKey = f[4] === '0' && !f[5] && f[1]!.endsWith('p') ? f[1] : undefined;
    const last = out[out.length - 1];
    if (last && anonKey && last.anonKey === anonKey && last.end === start) last.end = end;
    else out.push({ start, end, anonKey });
  }
  return out.map((m) => `${m.start}-${m.end}`);
}

/**
 * Dump and restore twice in a row (round 1 dumps the tree round 0 restored). The state
 * fingerprint taken right before each dump must equal the one taken right after the restore,
 * field by field (crtools-inspect), but for what the workload itself changes as it runs,
 * named in `moving` with the reason; `moving: null`: the tree changes shape as it runs (a
 * shell starting children), no fingerprint to hold it to.
 * sameMaps: compare /proc/PID/maps with the workload's at start (not for programs that keep
 * mapping, like node). frozen: take the fingerprints on the stopped tree (FROZEN_PRINT).
 * restoreFds: descriptors each restore gets as its 3, 4... (handed over with --inherit-fd).
 */
export function roundTrip(
  name: string, args: string[], check: (pid: number, state: string) => void, sameMaps = true, ready?: (pid: number) => boolean, moving: ExpectedChange[] | null = [],
  images?: (dir: string, pid: number) => void, dumpArgs: string[] = [], restoreArgs: string[] = [], frozen = false, restoreFds: number[] = [],
): void {
  const w = startWorkload(name, args);
  // a program started through launch is ready once it says so (e.g. its sockets exist)
  for (let i = 0; ready && !ready(w.pid) && i < 1000; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  // the tree's root as crtools sees it: the same pid after each restore, but for the init of a
  // pid namespace of the tree's own, born again in a new one (its pid there is what stays)
  let root = w.pid;
  const before = mapsOf(root);
  for (let round = 0; round < 2; round++) {
    const dir = tmp(`rt-${name}-${round}`);
    const f = frozen && moving ? frozenPrintScript(tmp(`rt-${name}-print`)) : undefined;
    let print = moving && !f && fingerprint(root);
    const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log', ...dumpArgs, ...(f ? ['--action-script', f.script] : [])]);
    expect(d.code, d.stderr).toBe(0);
    if (f) print = JSON.parse(readFileSync(f.print, 'utf8')) as Fingerprint;
    images?.(dir, root);
    expect(waitReaped(root)).toBe(true);
    const pidfile = path.join(dir, 'restored.pid');
    const r = restoreDir(dir, [...restoreArgs, ...(f ? ['-s'] : []), '--pidfile', pidfile], restoreFds);
    const was = root;
    if (r.code === 0) root = Number(readFileSync(pidfile, 'utf8'));
    restored.push(root);
    expect(r.code, r.stderr).toBe(0);
    const ownPidNs = root !== was;
    if (ownPidNs) expect(readFileSync(`/proc/${root}/status`, 'utf8')).toMatch(/\nNSpid:\s+\d+\s+1\n/);
    if (print && moving) {
      const after = fingerprint(root);
      if (f) for (const p of treePids(root)) process.kill(p, 'SIGCONT');
      const [a, b] = ownPidNs ? [insideView(print), insideView(after)] : [print, after];
      expect(compareFingerprints(a, b, [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...moving, ...(f ? FROZEN_PRINT : [])])).toEqual([]);
    }
    // exactly the dumped layout: nothing of the launcher or the restorer is left behind
    if (sameMaps) expect(mapsOf(root)).toEqual(before);
    expect(readFileSync(`/proc/${root}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    check(root, w.state);
  }
  killTreeAndWait(root);
  restored.splice(0);
}
