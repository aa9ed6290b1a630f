import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { criuFixtures, REFERENCE_CRIT, referenceCritUsable } from '@crtools/common/testing';
import { parseImageFileName } from '../../src/index.js';

export const fixturesRoot = criuFixtures();

export interface FixtureImage {
  /** e.g. "sleep/core-2680.img" */
  label: string;
  path: string;
  kind: string;
}

/** Every non-raw image of every CRIU 4.2 fixture dump (stats-dump included). */
export function fixtureImages(): FixtureImage[] {
  if (!existsSync(fixturesRoot)) return [];
  const out: FixtureImage[] = [];
  for (const d of readdirSync(fixturesRoot).sort()) {
    if (d === 'bin' || d === 'src') continue;
    for (const f of readdirSync(join(fixturesRoot, d)).sort()) {
      const p = parseImageFileName(f);
      if (!p || p.raw) continue;
      out.push({ label: `${d}/${f}`, path: join(fixturesRoot, d, f), kind: p.kind });
    }
  }
  return out;
}

/** Debian's crit runs under /usr/bin/python3 (the one with python3-protobuf). */
export const debianCrit = REFERENCE_CRIT.crit;
export const debianPython = REFERENCE_CRIT.python;
export const debianCritAvailable = referenceCritUsable;

/** `crit decode [--pretty] -i path` as Debian's crit prints it, minus the final newline. */
export function critDecode(path: string, pretty: boolean): string {
  const out = execFileSync(debianPython, [debianCrit, 'decode', ...(pretty ? ['--pretty'] : []), '-i', path], { maxBuffer: 1 << 28 });
  return out.toString('utf8').replace(/\n$/, '');
}

/** `crit encode` of a JSON text with Debian's crit. */
export function critEncode(json: string): Buffer {
  return execFileSync(debianPython, [debianCrit, 'encode'], { input: json, maxBuffer: 1 << 28 });
}

/** Field numbers → names of every message Debian's crit (3.17) knows. */
export function debianSchema(): Record<string, Record<string, string>> {
  const script = `
import json, pycriu.images.pb as pb
from google.protobuf.descriptor import Descriptor
out = {}
def walk(d):
    if d.full_name in out: return
    out[d.full_name] = {str(f.number): f.name for f in d.fields}
    for f in d.fields:
        if f.message_type: walk(f.message_type)
for n in dir(pb):
    c = getattr(pb, n)
    if hasattr(c, 'DESCRIPTOR') and isinstance(c.DESCRIPTOR, Descriptor): walk(c.DESCRIPTOR)
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(debianPython, ['-c', script]).toString());
}

/**
 * Decode many images with Debian's crit in one Python process: for each, pycriu.cli.decode
 * (the function behind `crit decode`) writes into a temporary file. Returns "path|pretty" → text.
 */
export function critDecodeAll(paths: string[], tmpDir: string): Map<string, string> {
  const jobs: [string, string, boolean][] = [];
  paths.forEach((p, i) => {
    for (const pretty of [false, true]) jobs.push([p, join(tmpDir, `crit-${i}-${pretty ? 'p' : 'n'}.json`), pretty]);
  });
  const script = `
import json, sys
from pycriu import cli
for src, dst, pretty in json.load(sys.stdin):
    try:
        cli.decode({'in': src, 'out': dst, 'pretty': pretty, 'nopl': False})
    except Exception as e:
        with open(dst, 'w') as f:
            f.write('!ERROR: %s' % e)
`;
  execFileSync(debianPython, ['-c', script], { input: JSON.stringify(jobs) });
  const out = new Map<string, string>();
  for (const [src, dst, pretty] of jobs) out.set(`${src}|${pretty}`, readFileSync(dst, 'utf8'));
  return out;
}

/** Image kinds Debian's crit has a handler for. */
export function debianCritKinds(): string[] {
  return JSON.parse(execFileSync(debianPython, ['-c', 'import json, pycriu.images.images as i; print(json.dumps(sorted(i.handlers)))']).toString());
}
