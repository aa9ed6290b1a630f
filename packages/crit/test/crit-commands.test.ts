import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeImage, humanSize } from '../src/decode.js';
import { encodeImage } from '../src/encode.js';
import { infoImage } from '../src/info.js';
import { collectOutput, criuFixtures, referenceCritUsable } from '@crtools/common/testing';

const fixtures = criuFixtures();
const haveFixtures = existsSync(fixtures);
const haveDebian = referenceCritUsable();

function streamOf(b: Buffer): PassThrough {
  const p = new PassThrough();
  p.end(b);
  return p;
}

const images: string[] = [];
if (haveFixtures) {
  for (const d of ['sleep', 'pattern', 'threads', 'pipetree', 'shloop']) {
    for (const f of readdirSync(path.join(fixtures, d))) if (f.endsWith('.img') && !f.startsWith('pages-')) images.push(path.join(d, f));
  }
}

describe.skipIf(!haveFixtures)('decode → encode in process is byte-identical (every fixture image, plain and pretty)', () => {
  for (const rel of images) {
    it(rel, async () => {
      const p = path.join(fixtures, rel);
      for (const pretty of [false, true]) {
        const d = collectOutput();
        expect(await decodeImage(p, d.w, { pretty })).toBe(0);
        const e = collectOutput();
        expect(await encodeImage(streamOf(d.buf()), e.w)).toBe(0);
        expect(Buffer.compare(e.buf(), readFileSync(p))).toBe(0);
      }
    });
  }
});

describe.skipIf(!haveFixtures)('decode details', () => {
  it('stdin input is decoded like a file and named <stdin> in errors', async () => {
    const p = path.join(fixtures, 'sleep', 'core-2680.img');
    const a = collectOutput();
    const b = collectOutput();
    await decodeImage(p, a.w);
    await decodeImage(streamOf(readFileSync(p)), b.w);
    expect(b.buf().toString()).toBe(a.buf().toString());
    await expect(decodeImage(streamOf(readFileSync(p).subarray(0, 50)), collectOutput().w)).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/^<stdin> at byte \d+: /) });
  });

  it.skipIf(!haveDebian)('show --nopl matches Debian crit for an image with payloads', async () => {
    const p = path.join(fixtures, 'pipetree', 'pipes-data.img');
    const o = collectOutput();
    await decodeImage(p, o.w, { pretty: true, nopl: true, newline: true });
    const ref = spawnSync('/usr/bin/python3', ['/usr/bin/crit', 'show', p, '--nopl']).stdout.toString();
    expect(o.buf().toString()).toBe(ref);
  });

  it('raw images are explained, not decoded', async () => {
    await expect(decodeImage(path.join(fixtures, 'pattern', 'pages-1.img'), collectOutput().w)).rejects.toMatchObject({
      code: 'CRIT_RAW_IMAGE',
      exitCode: 3,
      message: expect.stringMatching(/described by pagemap-2716\.img \(pages_id 1\)/),
    });
  });

  it('info: count without the pagemap head; payload images counted right', async () => {
    const o = collectOutput();
    await infoImage(path.join(fixtures, 'sleep', 'pagemap-2680.img'), o.w);
    const dec = collectOutput();
    await decodeImage(path.join(fixtures, 'sleep', 'pagemap-2680.img'), dec.w);
    const n = JSON.parse(dec.buf().toString()).entries.length;
    expect(JSON.parse(o.buf().toString())).toEqual({ magic: 'PAGEMAP', count: n - 1 });
    const o2 = collectOutput();
    await infoImage(path.join(fixtures, 'pipetree', 'pipes-data.img'), o2.w);
    expect(o2.buf().toString()).toBe('{\n    "magic": "PIPES_DATA",\n    "count": 3\n}\n');
  });
});

describe('encode errors', () => {
  it('names the byte offset of a JSON syntax error', async () => {
    await expect(encodeImage(streamOf(Buffer.from('{"magic": "PSTREE", "entries": [{"pid": 1,}]}')), collectOutput().w, { name: 'x.json' })).rejects.toMatchObject({
      exitCode: 3,
      message: 'x.json at byte 42: invalid JSON: expecting property name enclosed in double quotes',
    });
  });
  it('names the entry and field that do not fit the schema', async () => {
    await expect(encodeImage(streamOf(Buffer.from('{"magic": "PSTREE", "entries": [{"pid": 1, "nope": 2}]}')), collectOutput().w, { name: 'y.json' })).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringMatching(/^y\.json: entries\[0\]\.nope: /),
    });
  });
  it('numbers a bad entry by its place in the document, past the first conversion batch', async () => {
    const entries = Array.from({ length: 6000 }, (_, i) => (i === 5000 ? '{"pid": "x"}' : `{"pid": ${i + 1}, "ppid": 0, "pgid": 1, "sid": 1, "threads": [${i + 1}]}`));
    await expect(encodeImage(streamOf(Buffer.from(`{"magic": "PSTREE", "entries": [${entries.join(', ')}]}`)), collectOutput().w, { name: 'big.json' })).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringMatching(/^big\.json: entries\[5000\]\.pid: /),
    });
  });
  it('refuses an unknown magic', async () => {
    await expect(encodeImage(streamOf(Buffer.from('{"magic": "NOPE", "entries": []}')), collectOutput().w, { name: 'm.json' })).rejects.toMatchObject({ exitCode: 3, message: 'm.json: magic: unknown image kind "NOPE"' });
  });
  it('refuses binary input with a hint', async () => {
    await expect(encodeImage(streamOf(Buffer.from([0x19, 0x43, 0x56, 0x54])), collectOutput().w, { name: 'z' })).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/not JSON/) });
  });
});

describe('humanSize (crit --nopl sizes)', () => {
  it('matches Python crit human_readable', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(1023)).toBe('1023B');
    expect(humanSize(4096)).toBe('4KB');
    expect(humanSize(1536)).toBe('1.5KB');
    expect(humanSize(3 * 1048576)).toBe('3MB');
  });
});
