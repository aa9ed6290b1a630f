import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { decodeImage, encodeImage } from '@crtools/crit';
import { isCrtoolsError } from '@crtools/common';
import { critBin, fixturesDir } from '../lib/paths.js';
import { REFERENCE_CRIT, referenceCritUsable } from '@crtools/common/testing';

export interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Run our crit bin (node packages/cli/bin/crit.js). */
export function ours(args: string[], input?: Buffer | string): Run {
  const r = spawnSync(process.execPath, [critBin, ...args], { input, maxBuffer: 1 << 30, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/**
 * What `crit decode -i FILE [--pretty]` and `crit encode` (stdin to stdout) do, run in this
 * process through @crtools/crit, the library the bin is a thin layer over: for tests that
 * compare hundreds of images, where a Node start-up per call would be most of the time.
 * (interchange.test.ts checks that the bin writes the same bytes as this.)
 */
export async function oursInProcess(args: string[], input?: Buffer | string): Promise<Run> {
  const chunks: Buffer[] = [];
  const out = new Writable({ write(c, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
  const pretty = args.includes('--pretty');
  try {
    let code: number;
    if (args[0] === 'decode' && args[1] === '-i' && args.length <= 4) {
      code = await decodeImage(args[2]!, out, { pretty, newline: true });
    } else if (args[0] === 'encode' && args.length === 1 && input !== undefined) {
      code = await encodeImage(Readable.from([Buffer.from(input)]), out);
    } else if (args[0] === 'encode' && args[1] === '-i' && args.length === 3) {
      code = await encodeImage(args[2]!, out);
    } else {
      throw new Error(`oursInProcess: crit ${args.join(' ')} is not one of the forms it runs`);
    }
    return { code, stdout: Buffer.concat(chunks), stderr: '' };
  } catch (e) {
    if (!isCrtoolsError(e)) throw e;
    return { code: e.exitCode, stdout: Buffer.concat(chunks), stderr: `crit: ${e.message}\n` };
  }
}

export const debianCritPath = REFERENCE_CRIT.crit;
/** Debian's crit 3.17 must run with the system python (it imports pycriu from dist-packages). */
export const haveDebianCrit = referenceCritUsable();

/** debian() without blocking this process: tests that run concurrently overlap their calls. */
export function debianAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(REFERENCE_CRIT.python, [debianCritPath, ...args], { encoding: 'buffer', maxBuffer: 1 << 30, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : null) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

const debianDecodes = new Map<string, Promise<Run>>();
/** Debian's `crit decode -i FILE [--pretty]`, run once per file and form (its output is fixed). */
export function debianDecode(file: string, pretty = false): Promise<Run> {
  const key = `${pretty}:${file}`;
  let r = debianDecodes.get(key);
  if (!r) debianDecodes.set(key, (r = debianAsync(['decode', '-i', file, ...(pretty ? ['--pretty'] : [])])));
  return r;
}

export function debian(args: string[], input?: Buffer | string): Run {
  const r = spawnSync(REFERENCE_CRIT.python, [debianCritPath, ...args], { input, maxBuffer: 1 << 30, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

export const FIXTURE_DIRS = ['sleep', 'pattern', 'threads', 'pipetree', 'shloop'];

/** Image kind of a fixture file name: core-2680.img → core, files.img → files. */
export function kindOf(file: string): string {
  return file.replace(/\.img$/, '').replace(/-\d+$/, '');
}

/** Every image file of the fixtures as [dir, file, absolute path]. */
export function fixtureImages(): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const d of FIXTURE_DIRS) {
    const dir = path.join(fixturesDir, d);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.img')) out.push([d, f, path.join(dir, f)]);
  }
  return out;
}

export const haveFixtures = existsSync(fixturesDir);
