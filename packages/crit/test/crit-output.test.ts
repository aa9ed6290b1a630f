import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withOutput } from '../src/decode.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'crit-output-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('crit -o FILE on failure', () => {
  it('removes a partial regular file', async () => {
    const out = path.join(tmp, 'partial.json');
    await expect(withOutput(out, async (w) => { w.write('{"magic"'); throw new Error('boom'); })).rejects.toThrow('boom');
    expect(existsSync(out)).toBe(false);
  });

  it('never unlinks what is not a regular file (a fifo, or /dev/null)', async () => {
    const fifo = path.join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // holding the fifo open read-write lets the writer's open complete without a reader process
    const keep = openSync(fifo, 'r+');
    try {
      await expect(withOutput(fifo, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      expect(lstatSync(fifo).isFIFO()).toBe(true);
    } finally {
      closeSync(keep);
    }
    await expect(withOutput('/dev/null', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true);
  });
});
