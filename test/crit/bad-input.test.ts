/**
 * Bad input through the real bin: one line on stderr naming the file (and the byte offset
 * where there is one), a non-zero exit code (3 = bad input, 2 = usage), no stack trace,
 * no output file left behind, no hang.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturesDir } from '../lib/paths.js';
import { haveFixtures, ours } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'crit-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack
  return lines[0]!;
}

function file(name: string, data: Buffer | string): string {
  const p = path.join(tmp, name);
  writeFileSync(p, data);
  return p;
}

describe.skipIf(!haveFixtures)('bad images', () => {
  const core = readFileSync(path.join(fixturesDir, 'sleep', 'core-2680.img'));

  it('truncated inside an entry: file, byte offset, problem', () => {
    const p = file('trunc-core.img', core.subarray(0, 100));
    const r = ours(['decode', '-i', p]);
    expect(r.code).toBe(3);
    const l = oneLine(r.stderr);
    expect(l).toContain(p);
    expect(l).toMatch(/byte \d+/);
  });

  it('truncated inside a length prefix', () => {
    const p = file('trunc-len.img', core.subarray(0, 10));
    const r = ours(['decode', '-i', p]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/byte \d+/);
  });

  it('unknown magic (random bytes)', () => {
    const p = file('garbage.img', Buffer.from('0123456789abcdef0123456789abcdef'));
    const r = ours(['decode', '-i', p]);
    expect(r.code).toBe(3);
    const l = oneLine(r.stderr);
    expect(l).toContain(p);
    expect(l).toMatch(/magic/i);
  });

  it('empty file', () => {
    const p = file('empty.img', Buffer.alloc(0));
    const r = ours(['decode', '-i', p]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toContain(p);
  });

  it('corrupt protobuf inside an entry', () => {
    const bad = Buffer.from(core);
    bad.fill(0xff, 12, 40);
    const p = file('corrupt-core.img', bad);
    const r = ours(['decode', '-i', p]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/byte \d+/);
  });

  it('absurd entry length does not allocate or hang', () => {
    const b = Buffer.from(core.subarray(0, 8));
    const p = file('huge-len.img', Buffer.concat([b, Buffer.from([0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(16)]));
    const t0 = Date.now();
    const r = ours(['decode', '-i', p]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toContain(p);
  });

  it('the same image on stdin is named <stdin>', () => {
    const r = ours(['decode'], core.subarray(0, 100));
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toContain('<stdin>');
  });

  it('no half-written -o file is left behind', () => {
    const p = file('trunc2.img', core.subarray(0, 100));
    const o = path.join(tmp, 'out.json');
    const r = ours(['decode', '-i', p, '-o', o]);
    expect(r.code).toBe(3);
    expect(existsSync(o)).toBe(false);
  });

  it('info on a truncated image', () => {
    const p = file('trunc3.img', core.subarray(0, 100));
    const r = ours(['info', p]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toContain(p);
  });
});

describe.skipIf(!haveFixtures)('raw images get an explanation, not a decode error', () => {
  it('pages-1.img names the pagemap that describes it', () => {
    const p = path.join(fixturesDir, 'sleep', 'pages-1.img');
    for (const args of [['decode', '-i', p], ['show', p], ['info', p]]) {
      const r = ours(args);
      expect(r.code).toBe(3);
      const l = oneLine(r.stderr);
      expect(l).toContain('pages-1.img');
      expect(l).toMatch(/raw memory pages/);
      expect(l).toContain('pagemap-2680.img');
    }
  });
  it('pipetree: pages-2.img is described by the pagemap whose head says pages_id 2', () => {
    const r = ours(['decode', '-i', path.join(fixturesDir, 'pipetree', 'pages-2.img')]);
    const l = oneLine(r.stderr);
    const m = l.match(/described by (pagemap-\d+\.img)/);
    expect(m).not.toBeNull();
    const dec = JSON.parse(ours(['decode', '-i', path.join(fixturesDir, 'pipetree', m![1]!)]).stdout.toString());
    expect(dec.entries[0].pages_id).toBe(2);
  });
  it('a copied pages file with no pagemap beside it says so', () => {
    const d = path.join(tmp, 'lonely');
    mkdirSync(d);
    const p = path.join(d, 'pages-7.img');
    copyFileSync(path.join(fixturesDir, 'sleep', 'pages-1.img'), p);
    const l = oneLine(ours(['decode', '-i', p]).stderr);
    expect(l).toMatch(/no pagemap image with pages_id 7/);
  });
});

describe('bad JSON for encode', () => {
  const cases: [string, string, RegExp][] = [
    ['syntax', '{"magic": "PSTREE", "entries": [{"pid": 1,}]}', /byte 42/],
    ['truncated', '{"magic": "PSTREE", "entries": [{"pid": 1', /byte \d+/],
    ['empty', '', /empty|expecting/],
    ['unknown magic', '{"magic": "NOPE", "entries": []}', /NOPE/],
    ['no magic', '{"entries": []}', /magic/],
    ['wrong field', '{"magic": "PSTREE", "entries": [{"pid": 1, "bogus_field": 2}]}', /bogus_field/],
    ['wrong type', '{"magic": "PSTREE", "entries": [{"pid": "abc"}]}', /pid/],
  ];
  for (const [name, json, re] of cases) {
    it(name, () => {
      const p = file(`bad-${name.replace(/ /g, '-')}.json`, json);
      const r = ours(['encode', '-i', p]);
      expect(r.code).toBe(3);
      const l = oneLine(r.stderr);
      expect(l).toContain(p);
      expect(l).toMatch(re);
    });
  }
  it.skipIf(!haveFixtures)('a binary image given to encode', () => {
    const r = ours(['encode', '-i', path.join(fixturesDir, 'sleep', 'core-2680.img')]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/not JSON/);
  });
});

describe('usage and missing files', () => {
  it('missing file', () => {
    const r = ours(['decode', '-i', '/nonexistent/x.img']);
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toContain('/nonexistent/x.img');
  });
  it('show/info without an argument', () => {
    for (const c of ['show', 'info']) {
      const r = ours([c]);
      expect(r.code).toBe(2);
      oneLine(r.stderr);
    }
  });
  it('x on something that is not a checkpoint directory', () => {
    const r = ours(['x', tmp, 'ps']);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toContain('pstree.img');
    const r2 = ours(['x', tmp, 'nonsense']);
    expect(r2.code).toBe(2);
    oneLine(r2.stderr);
  });
  it('a directory given as an image', () => {
    const r = ours(['decode', '-i', tmp]);
    expect(r.code).toBe(3);
    oneLine(r.stderr);
  });
  it('-v shows the stack', () => {
    const r = ours(['decode', '-v', '-i', '/nonexistent/x.img']);
    expect(r.stderr.split('\n').filter(Boolean).length).toBeGreaterThan(1);
  });
});
