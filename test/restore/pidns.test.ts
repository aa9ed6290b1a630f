/**
 * Trees in a pid namespace of their own (issue 17, pid namespaces): a tree whose root is the
 * init (pid 1) of its pid namespace is dumped with the pids its tasks have inside it (pstree.img,
 * the per-task images, ids-<pid>.img naming the tree's pid namespace) as CRIU 4.2 writes it, and
 * restored with the root born in a new pid namespace as its init and every task and thread at
 * its pid there. The state fingerprint is compared as the tasks see their pids (insideView).
 * Refused by name: a root that is not its namespace's init, and a task below the root in yet
 * another pid namespace (nested, as CRIU). Workload test/workloads/pidns.c.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { readImageFile, writeImageFile } from '@crtools/images';
import { buildRestorePlan } from '@crtools/restorer';
import { fixturesDir } from '../lib/paths.js';
import { restoreDir, restoreRoot } from './roundtrip.js';

const VERDICT = 'check ok pid=1 children=2 thread=1';

/** roots of restored trees not yet killed (by pid) */
const restoredRoots: number[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

function nsLink(pid: number, kind: string): string {
  return readlinkSync(`/proc/${pid}/ns/${kind}`);
}

/** The pid a task has in its innermost pid namespace. */
function innerPid(pid: number): number {
  const m = /^NSpid:\s+([\d\s]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))!;
  return Number(m[1]!.trim().split(/\s+/).pop());
}

function killAndCheck(root: number): void {
  killTreeAndWait(root);
}

describe('a tree in a pid namespace of its own', () => {
  it('pidns (init + 2 children + a thread, a timer aimed at the thread, a flock) round trips twice: same pids inside (fingerprint seen from inside), new pid namespace, verdict ok', () => {
    const w = startWorkload('pidns', []);
    let root = w.pid;
    expect(innerPid(root)).toBe(1);
    for (let round = 0; round < 2; round++) {
      const before = fingerprint(root);
      const dir = tmp(`pidns-rt-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log', '--file-locks']);
      expect(d.code, d.stderr).toBe(0);
      // the lock's task and the timer's thread as the tree names them
      expect(critDecode(`${dir}/filelocks.img`).entries).toEqual([expect.objectContaining({ pid: 1 })]);
      expect(critDecode(`${dir}/core-1.img`).entries[0].tc.timers.posix).toEqual([expect.objectContaining({ notify_thread_id: 4 })]);
      // the images as CRIU 4.2 writes them (Debian's crit as the reference decoder)
      const ps = critDecode(`${dir}/pstree.img`).entries;
      expect(ps).toEqual([
        { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 4] },
        { pid: 2, ppid: 1, pgid: 1, sid: 1, threads: [2] },
        { pid: 3, ppid: 1, pgid: 1, sid: 1, threads: [3] },
      ]);
      const inv = critDecode(`${dir}/inventory.img`).entries[0];
      expect(inv.root_ids.pid_ns_id).toBe(1);
      for (const p of [1, 2, 3]) expect(critDecode(`${dir}/ids-${p}.img`).entries[0].pid_ns_id).toBe(9);
      expect(critDecode(`${dir}/core-4.img`).entries).toHaveLength(1);
      expect(waitReaped(root)).toBe(true);
      const pidfile = path.join(dir, 'root.pid');
      const r = restoreDir(dir, ['--pidfile', pidfile]);
      expect(r.code, r.stderr).toBe(0);
      root = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(root);
      // born in a pid namespace of its own, at pid 1 there; its children and thread at theirs
      expect(nsLink(root, 'pid')).not.toBe(nsLink(process.pid, 'pid'));
      expect(innerPid(root)).toBe(1);
      expect(treePids(root).map(innerPid).sort()).toEqual([1, 2, 3]);
      const after = fingerprint(root);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(readFileSync(`/proc/${root}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
      expect(askVerdict(w.state, root, 10_000)).toBe(VERDICT);
    }
    killAndCheck(root);
    restoredRoots.splice(0);
  });

  it('pre-dump then dump with --prev-images-dir --track-mem: the pagemaps are named by the pids inside, the dump finds its parent round, restored with the verdict ok', () => {
    const w = startWorkload('pidns', []);
    const base = tmp('pidns-predump');
    const p = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'p1')]);
    expect(p.code, p.stderr).toBe(0);
    expect(readdirSync(path.join(base, 'p1')).filter((f) => f.startsWith('pagemap-')).sort()).toEqual(['pagemap-1.img', 'pagemap-2.img', 'pagemap-3.img']);
    const d = criu(['dump', '-t', String(w.pid), '-D', path.join(base, 'd'), '--prev-images-dir', '../p1', '--track-mem', '-o', 'dump.log', '--file-locks']);
    expect(d.code, d.stderr).toBe(0);
    // pages not written since the pre-dump stay in the parent round (entries with PE_PARENT, 1)
    const pm = critDecode(path.join(base, 'd', 'pagemap-1.img')).entries.slice(1) as { flags: number }[];
    expect(pm.some((e) => (Number(e.flags) & 1) !== 0)).toBe(true);
    expect(waitReaped(w.pid)).toBe(true);
    const root = restoreRoot(path.join(base, 'd'));
    restoredRoots.push(root);
    expect(askVerdict(w.state, root, 10_000)).toBe(VERDICT);
    killAndCheck(root);
    restoredRoots.splice(0);
  });

  it('pages behind PROT_NONE (read through /proc/PID/mem by the real pid, not the pid inside: zdtm maps04 in its ns flavour) come back as they were, verdict ok', () => {
    const w = startWorkload('pidns', ['protnone']);
    const dir = tmp('pidns-protnone');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--file-locks']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const root = restoreRoot(dir);
    restoredRoots.push(root);
    expect(askVerdict(w.state, root, 10_000)).toBe(VERDICT);
    killAndCheck(root);
    restoredRoots.splice(0);
  });

  it('--check-only on such a tree finds nothing to refuse; the tree runs on', () => {
    const w = startWorkload('pidns', []);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('pidns-check'), '--file-locks']);
    expect(c.code, c.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killAndCheck(w.pid);
  });

  it('a /proc file reached through criu\'s /proc (the tree has no mount namespace of its own: /proc/1 is the host\'s init) is refused by name (exit 4), the tree runs on', () => {
    const w = startWorkload('pidns', ['hostproc']);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('pidns-hostproc'), '-o', 'dump.log', '--file-locks']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toBe(`criu: task ${w.pid} fd 20 (/proc/1/status): a file of process 1 under the /proc of criu's pid namespace, from a tree in a pid namespace of its own, is not supported\n`);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killAndCheck(w.pid);
  });

  it('a root that is not the init of its pid namespace is refused by name (exit 4), the tree runs on', () => {
    const w = startWorkload('pidns', []);
    const kid = treePids(w.pid).find((p) => p !== w.pid)!;
    expect(innerPid(kid)).toBeGreaterThan(1);
    const d = criu(['dump', '-t', String(kid), '-D', tmp('pidns-notinit'), '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`root ${kid} lives in a pid namespace of its own but is not its init \\(its pid there is ${innerPid(kid)}\\)`));
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killAndCheck(w.pid);
  });

  it('a task below the root in a pid namespace of its own (nested) is refused by name (exit 4), the tree runs on', () => {
    // unshare's init (a shell, pid 1 of the outer namespace) whose child unshares another
    const u = spawn('unshare', ['--pid', '--fork', 'setsid', 'sh', '-c', 'unshare --pid --fork sleep 1000 & wait'], { stdio: 'ignore', detached: true });
    try {
      let init = 0;
      let nested = 0;
      for (let i = 0; i < 500 && !nested; i++) {
        init = treePids(u.pid!).find((p) => p !== u.pid) ?? 0;
        nested = init ? treePids(init).find((p) => nsLink(p, 'pid') !== nsLink(init, 'pid')) ?? 0 : 0;
        if (!nested) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(nested).toBeGreaterThan(0);
      expect(innerPid(init)).toBe(1);
      const d = criu(['dump', '-t', String(init), '-D', tmp('pidns-nested'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(new RegExp(`task ${nested} lives in nested namespaces \\(pid: neither criu's nor the root's\\)`));
      const pids = treePids(init);
      expect(pids).toContain(nested);
      for (const p of pids) expect(readFileSync(`/proc/${p}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    } finally {
      killTreeAndWait(u.pid!);
    }
  });
});

describe('what a tree in a pid namespace of its own cannot carry', () => {
  // (its own terminals are carried: test/restore/tty.test.ts, pty pidns)
  it.skipIf(!existsSync('/usr/bin/script'))('a terminal whose master is outside the tree (the pty of script(1)) is refused by name (exit 4), the tree runs on', () => {
    const u = spawn('/usr/bin/script', ['-qc', 'unshare --pid --fork setsid sleep 1000', '/dev/null'], { stdio: 'ignore', detached: true });
    try {
      let init = 0;
      for (let i = 0; i < 500 && !init; i++) {
        init = treePids(u.pid!).find((p) => p !== u.pid && readlinkSync(`/proc/${p}/exe`).endsWith('/sleep') && innerPid(p) === 1) ?? 0;
        if (!init) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(init).toBeGreaterThan(0);
      const d = criu(['dump', '-t', String(init), '-D', tmp('pidns-tty'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(new RegExp(`^criu: task ${init} fd 0 \\(/dev/pts/\\d+\\): a terminal whose master is outside the dumped tree`));
      expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    } finally {
      killTreeAndWait(u.pid!);
    }
  });
});

describe('the restore plan of a tree in a pid namespace of its own', () => {
  it('a root that is not pid 1 of the pid namespace its images name is bad input (exit 3), not restored', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-pidns-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const ids = await readImageFile(path.join(d, 'ids-2680.img'));
    (ids.entries[0] as Record<string, unknown>).pid_ns_id = 99;
    await writeImageFile(path.join(d, 'ids-2680.img'), ids);
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('pid 2680 is the root of a pid namespace of its own (ids-2680.img) but not its init (pid 1)') });
  });
});
