/**
 * CRIU 4.2 as the other side of interop tests: where its binary is (env CRIU, else
 * /tmp/criu-4.2/criu/criu; undefined: not on this machine, the tests say so and skip), and one
 * way to run a dump or restore by either tool, expecting success.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { ExpectedChange } from '@crtools/inspect';
import { criu, tmp, waitReaped } from '../dump/helpers.js';

export const CRIU: string | undefined = ((): string | undefined => {
  const c = process.env['CRIU'] ?? '/tmp/criu-4.2/criu/criu';
  return existsSync(c) ? c : undefined;
})();

/** Run `args` (dump or restore, logs in `dir`) with CRIU 4.2 or with crtools ('us'); it must succeed. */
export function runBy(who: 'CRIU' | 'us', dir: string, args: string[]): void {
  if (who === 'CRIU') {
    const r = spawnSync(CRIU!, args, { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, `CRIU ${args[0]}: ${r.stderr}\n${logErrors(path.join(dir, args.includes('dump') ? 'dump.log' : 'restore.log'))}`).toBe(0);
  } else {
    const r = criu(args);
    expect(r.code, r.stderr).toBe(0);
  }
}

/**
 * The tree at `root` dumped by CRIU 4.2 and restored by crtools, then dumped by crtools and
 * restored by CRIU 4.2 (with `--root /`: a tree with a mount namespace of its own): `before` is
 * called with the root before each dump (its fingerprint, its verdict), `after` with the
 * restored root (pushed to `restored` for the test's clean-up) and what `before` gave. Returns
 * the last root.
 */
export function bothWaysWithCriu<T>(name: string, root: number, restored: number[], before: (root: number) => T, after: (root: number, was: T, dumper: 'CRIU' | 'us', restorer: 'CRIU' | 'us') => void): number {
  for (const [dumper, restorer] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
    const was = before(root);
    const dir = tmp(`${name}-${dumper}`);
    runBy(dumper, dir, ['dump', '-t', String(root), '-D', dir, '-o', 'dump.log', '-v4']);
    expect(waitReaped(root)).toBe(true);
    const pidfile = path.join(dir, 'root.pid');
    runBy(restorer, dir, ['restore', '-D', dir, '-o', 'restore.log', '-v4', '-d', '--pidfile', pidfile, ...(restorer === 'CRIU' ? ['--root', '/'] : [])]);
    root = Number(readFileSync(pidfile, 'utf8'));
    restored.push(root);
    after(root, was, dumper, restorer);
  }
  return root;
}

/** The last error and warning lines of a CRIU log ('' when it cannot be read). */
function logErrors(p: string): string {
  try {
    return readFileSync(p, 'utf8').split('\n').filter((l) => /Error|Warn/.test(l)).slice(-10).join('\n');
  } catch {
    return '';
  }
}

/**
 * CRIU 4.2's dump, restored by crtools: a page of the program's private file mapping that the
 * init and its descendants held as copies comes back as one (the restore lays a child's pages
 * over its parent's and keeps those of equal contents shared, cow.ts compares them; the
 * children's verdicts check their memory). The fingerprint digests anonymous pages only, so it
 * cannot see that they were equal; crtools' own dump of the same tree does not show it.
 */
export const CRIU_COW: ExpectedChange = { path: /^sharedPages\[1:[0-9a-f]+( \d+:[0-9a-f]+)+\]$/, why: 'a private file page of the init and its descendants with equal contents, kept one page by the restore of CRIU\'s images (compared at restore; not digested by the fingerprint)' };

/**
 * What a tree restored by CRIU 4.2 (or by crtools from CRIU's images, which always hold the
 * clocks) has beside what it had: a time namespace of its own (CRIU restores every tree into a
 * new one), with the offsets that keep its clocks going on. The tree's other namespaces must
 * be the same.
 */
export const CRIU_TIME_NS: ExpectedChange[] = [
  {
    path: /^namespaces\.own$/,
    why: 'CRIU 4.2 restores every tree into a new time namespace of its own: only "time" may be added to the kinds the root has of its own',
    keep: (v) => (typeof v === 'string' ? v.replace(/,?"time"/, '') : v),
  },
  { path: /^namespaces\.time\./, why: "the offsets of that time namespace (the tree's clocks go on from where the dump left them)" },
];
