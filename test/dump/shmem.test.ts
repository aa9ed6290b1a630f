import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criu, decodeAll, haveCrit, killAllStarted, ourCritDecode, startWorkload, tmp } from './helpers.js';

afterAll(() => killAllStarted());

const PG = 4096;

function readyInfo(state: string): Record<string, string> {
  const line = readFileSync(state, 'utf8');
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

function dumpTo(pid: number): string {
  const dir = tmp('img');
  const r = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '-R']);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

/** pagemap entries (after the pages_id head) with their offset into the pages image. */
function pagemapRuns(file: string): { pagesId: number; runs: { vaddr: bigint; nr: number; flags: number; off: number }[] } {
  const entries = ourCritDecode(file).entries;
  let off = 0;
  const runs = entries.slice(1).map((e: any) => {
    const r = { vaddr: BigInt(e.vaddr), nr: Number(e.nr_pages), flags: Number(e.flags), off };
    if (r.flags & 4) off += r.nr * PG;
    return r;
  });
  return { pagesId: entries[0].pages_id, runs };
}

describe.skipIf(!haveCrit)('dump: zero pages and shared memory (Debian crit decodes the images)', () => {
  it('pages only read (mapped to the zero page) are not dumped; written ones are', () => {
    const w = startWorkload('shmem', ['zero']);
    const info = readyInfo(w.state);
    const zero = BigInt(info['zero']!);
    const dir = dumpTo(w.pid);
    decodeAll(dir); // every image decodes with Debian's crit
    const { pagesId, runs } = pagemapRuns(path.join(dir, `pagemap-${w.pid}.img`));
    const inArea = runs.filter((r) => r.vaddr + BigInt(r.nr * PG) > zero && r.vaddr < zero + 64n * BigInt(PG));
    // exactly the four written pages (PE_PRESENT, PE_LAZY as CRIU marks private anonymous memory),
    // nothing of the 60 zero-page ones
    expect(inArea.map((r) => [r.vaddr - zero, r.nr, r.flags & 4])).toEqual([[0n, 4, 4]]);
    const pages = readFileSync(path.join(dir, `pages-${pagesId}.img`));
    const data = pages.subarray(inArea[0]!.off, inArea[0]!.off + 4 * PG);
    expect(data.every((b) => b === 0x5a)).toBe(true);
    expect(w.check()).toBe('check ok');
  });
});
