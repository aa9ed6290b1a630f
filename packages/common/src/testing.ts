/**
 * What the test suites of every package share (imported as @crtools/common/testing, never by
 * the libraries themselves): where the CRIU 4.2 reference checkpoints are, and whether the
 * reference crit (Debian's, Python) can be run here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';

/** The repository root: the nearest directory above `from` holding pnpm-workspace.yaml. */
export function repositoryRoot(from = process.cwd()): string {
  for (let d = path.resolve(from); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'pnpm-workspace.yaml'))) return d;
    if (path.dirname(d) === d) throw new Error(`no pnpm-workspace.yaml above ${from}`);
  }
}

/**
 * The shared fixtures folder (checkpoints written by CRIU 4.2 and their workloads):
 * $CRTOOLS_FIXTURES, else ../shared/fixtures beside the repository.
 */
export function fixturesRoot(): string {
  return path.resolve(process.env['CRTOOLS_FIXTURES'] ?? path.join(repositoryRoot(), '..', 'shared', 'fixtures'));
}

/** The CRIU 4.2 checkpoints: fixturesRoot()/criu-4.2. */
export function criuFixtures(): string {
  return path.join(fixturesRoot(), 'criu-4.2');
}

/** Debian's crit and the Python that runs it (its pycriu is in that Python's dist-packages). */
export const REFERENCE_CRIT = { crit: '/usr/bin/crit', python: '/usr/bin/python3' } as const;

let usable: boolean | undefined;

/** Whether the reference crit runs here (installed, and its pycriu imports). */
export function referenceCritUsable(): boolean {
  if (usable === undefined) {
    usable = existsSync(REFERENCE_CRIT.crit) && existsSync(REFERENCE_CRIT.python);
    if (usable) {
      try {
        execFileSync(REFERENCE_CRIT.python, ['-c', 'import pycriu.images'], { stdio: 'ignore' });
      } catch {
        usable = false;
      }
    }
  }
  return usable;
}

/** Run the reference crit with these arguments; its stdout. */
export function referenceCrit(args: string[], opts: { input?: string | Buffer } = {}): Buffer {
  return execFileSync(REFERENCE_CRIT.python, [REFERENCE_CRIT.crit, ...args], { input: opts.input, maxBuffer: 1 << 28 });
}

/** A Writable that keeps what it is given: `buf()` the bytes, `text()` them as UTF-8. */
export function collectOutput(): { w: Writable; buf: () => Buffer; text: () => string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c, _enc, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  return { w, buf: () => Buffer.concat(chunks), text: () => Buffer.concat(chunks).toString('utf8') };
}
