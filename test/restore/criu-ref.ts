/**
 * CRIU 4.2 as the other side of interop tests: where its binary is (env CRIU, else
 * /tmp/criu-4.2/criu/criu; undefined: not on this machine, the tests say so and skip), and one
 * way to run a dump or restore by either tool, expecting success.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { criu } from '../dump/helpers.js';

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

/** The last error and warning lines of a CRIU log ('' when it cannot be read). */
function logErrors(p: string): string {
  try {
    return readFileSync(p, 'utf8').split('\n').filter((l) => /Error|Warn/.test(l)).slice(-10).join('\n');
  } catch {
    return '';
  }
}
