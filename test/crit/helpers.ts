import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
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

export const debianCritPath = REFERENCE_CRIT.crit;
/** Debian's crit 3.17 must run with the system python (it imports pycriu from dist-packages). */
export const haveDebianCrit = referenceCritUsable();

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
