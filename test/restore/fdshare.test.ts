/**
 * Descriptor tables shared between processes (CLONE_FILES): a child and a grandchild sharing
 * the root's table come back sharing one table again, an ordinary child keeps its own copy —
 * round-tripped twice under the fingerprint (which records, by kcmp, who shares what), and
 * checked by the workload itself (a descriptor opened by one is closed by another). What stays
 * refused: a shared table holding a pidfd (a shared cwd/root/umask, CLONE_FS, is refused as by
 * CRIU: test/dump/check-only.test.ts).
 * Every process is killed by pid.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, criu, killAllStarted, killTreeAndWait, startWorkload, tmp, treePids } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

describe('shared descriptor tables (CLONE_FILES)', () => {
  it('a child and grandchild sharing the root table share it again after each restore; an ordinary child keeps its own', () => {
    roundTrip('fdshare', [], (pid, state) => {
      const [root, c, g, n] = treePids(pid);
      expect(treePids(pid)).toHaveLength(4);
      const shares = new Map(fingerprint(pid).tasks.map((t) => [t.pid, t.shares.files]));
      // the root's table is the first: C and G name it, N names its own
      expect(shares.get(root!)).toBe(root);
      expect([c, g, n].map((p) => shares.get(p!)).sort()).toEqual([root, root, n].sort());
      expect(askVerdict(state, pid)).toBe('check ok');
    });
  });

  it('a shared table holding a pidfd is refused by name (exit 4), naming the sharer and the fd; the tree goes on', () => {
    const w = startWorkload('fdshare', ['pidfd']);
    const [, c, g] = treePids(w.pid);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('fdshare-pidfd')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`^criu: task (${c}|${g}) fd 50: a pidfd in a descriptor table shared with task (${w.pid}|${c}) \\(CLONE_FILES\\) is not supported\n$`));
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
    killTreeAndWait(w.pid);
  });
});
