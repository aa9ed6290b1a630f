import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { criu, killAllStarted, killTree, startWorkload, tmp, waitReaped } from './helpers.js';

afterAll(() => killAllStarted());

function treePids(pid: number): number[] {
  const out = [pid];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean)) out.push(...treePids(Number(c)));
  }
  return out;
}

// `criu restore` belongs to the restore engineer; this suite runs only where it is mounted
const haveRestore = criu(['restore', '--help']).code === 0;

describe.skipIf(!haveRestore)('dump → restore → the workload verifies itself (needs criu restore)', () => {
  for (const [name, args, verdict] of [
    ['pattern', ['16'], /^check ok bad=0$/],
    ['threads', ['4'], /^check ok alive=4 of 4$/],
    ['pipetree', [], /^check ok inflight=1 alive=1 rounds=\d+$/],
    ['sighandlers', [], /^check ok$/],
    ['blockread', [], /^check ok n=1$/],
  ] as const) {
    it(`${name}`, () => {
      const w = startWorkload(name, [...args]);
      const dir = tmp(`rt-${name}`);
      const tree = treePids(w.pid);
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true); // the checkpoint needs its pid free again
      const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log']);
      expect(r.code, r.stderr).toBe(0);
      try {
        expect(w.check(20_000)).toMatch(verdict);
      } finally {
        // the restored tree has the same pids; kill each by pid, whoever its parent is now
        for (const p of tree) killTree(p);
      }
      expect(readdirSync(dir)).toContain('inventory.img');
    });
  }
});
