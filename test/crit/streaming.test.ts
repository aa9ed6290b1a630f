/**
 * Big images stream: a 300,000-entry pagemap (made with our encoder) decodes with V8's old
 * space capped at 40 MiB; decoding the whole image and building its text in memory
 * (readImageFile + toCritJson) runs out of heap under the same cap (checked by hand).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { critBin } from '../lib/paths.js';
import { ours } from './helpers.js';

const N = 300_000;
const tmp = mkdtempSync(path.join(tmpdir(), 'crit-stream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('streaming decode', () => {
  it(`decodes a ${N}-entry pagemap in a 40 MiB old space, output identical to an uncapped run`, () => {
    const parts = ['{"magic": "PAGEMAP", "entries": [{"pages_id": 1}'];
    let v = 0x7f0000000000n;
    for (let i = 0; i < N; i++) {
      const addr = i % 1000 === 999 ? 0xffffffffff000000n - BigInt(i) * 0x1000n : v;
      parts.push(`, {"vaddr": ${addr}, "compat_nr_pages": 0, "flags": 4, "nr_pages": ${(i % 3) + 1}}`);
      v += 0x5000n;
    }
    parts.push(']}');
    const json = path.join(tmp, 'pm.json');
    const img = path.join(tmp, 'pagemap-1.img');
    writeFileSync(json, parts.join(''));
    const enc = ours(['encode', '-i', json, '-o', img]);
    expect(enc.code, enc.stderr).toBe(0);

    const capped = spawnSync(process.execPath, ['--max-old-space-size=40', critBin, 'decode', '-i', img], { maxBuffer: 1 << 30, timeout: 120_000 });
    expect(capped.stderr.toString()).toBe('');
    expect(capped.status).toBe(0);
    const full = ours(['decode', '-i', img]);
    expect(Buffer.compare(capped.stdout, full.stdout)).toBe(0);
    // and it is the document we encoded (plus crit's final newline on stdout)
    expect(full.stdout.toString()).toBe(parts.join('') + '\n');

    const info = JSON.parse(ours(['info', img]).stdout.toString());
    expect(info).toEqual({ magic: 'PAGEMAP', count: N });
  });
});
