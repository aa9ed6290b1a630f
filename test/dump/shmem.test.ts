import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criu, decodeAll, haveCrit, killAllStarted, ourCritDecode, startWorkload, tmp } from './helpers.js';

afterAll(() => killAllStarted());

const PG = 4096;

function readyInfo(state: string): Record<string, string> {
  const line = readFileSync(state, 'utf8');
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

/** The /proc/PID/pagemap word of one page. */
function pagemapWord(pid: number, addr: bigint): bigint {
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const b = Buffer.alloc(8);
    readSync(fd, b, 0, 8, Number((addr / BigInt(PG)) * 8n));
    return b.readBigUInt64LE(0);
  } finally {
    closeSync(fd);
  }
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
  it('pages only read are not dumped where they map the shared zero page (dumped where the kernel gave each its own); written ones are', () => {
    const w = startWorkload('shmem', ['zero']);
    const info = readyInfo(w.state);
    const zero = BigInt(info['zero']!);
    // the read-only pages share the kernel's zero page where its read faults map one (not everywhere)
    const pfn = (i: bigint) => pagemapWord(w.pid, zero + i * BigInt(PG)) & ((1n << 55n) - 1n);
    const sharedZeroPage = pfn(4n) !== 0n && pfn(4n) === pfn(63n);
    const dir = dumpTo(w.pid);
    decodeAll(dir); // every image decodes with Debian's crit
    const { pagesId, runs } = pagemapRuns(path.join(dir, `pagemap-${w.pid}.img`));
    const inArea = runs.filter((r) => r.vaddr + BigInt(r.nr * PG) > zero && r.vaddr < zero + 64n * BigInt(PG));
    const pages = readFileSync(path.join(dir, `pages-${pagesId}.img`));
    const data = pages.subarray(inArea[0]!.off, inArea[0]!.off + 4 * PG);
    expect(data.every((b) => b === 0x5a)).toBe(true);
    if (sharedZeroPage) {
      // exactly the four written pages (PE_PRESENT, PE_LAZY as CRIU marks private anonymous memory),
      // nothing of the 60 zero-page ones
      expect(inArea.map((r) => [r.vaddr - zero, r.nr, r.flags & 4])).toEqual([[0n, 4, 4]]);
    } else {
      // this kernel gave each read page a page of its own: they are memory like any other, dumped
      expect(inArea.map((r) => [r.vaddr - zero, r.nr >= 64, r.flags & 4])).toEqual([[0n, true, 4]]);
      expect(pages.subarray(inArea[0]!.off + 4 * PG, inArea[0]!.off + 64 * PG).every((b) => b === 0)).toBe(true);
    }
    expect(w.check()).toBe('check ok');
  });

  it('shared anonymous memory shared with a child: dumped once the memfd way, as CRIU 4.2 does', () => {
    const w = startWorkload('shmem', ['shm']);
    const info = readyInfo(w.state);
    const shm = BigInt(info['shm']!);
    const child = Number(info['child']);
    const ino = BigInt(readFileSync(`/proc/${w.pid}/maps`, 'utf8').split('\n').find((l) => l.startsWith(shm.toString(16) + '-'))!.trim().split(/\s+/)[4]!);
    const dir = dumpTo(w.pid);
    const images = decodeAll(dir); // Debian's crit decodes every image, memfd.img and pagemap-shmem included
    const shmVma = (pid: number) => images[`mm-${pid}.img`].entries[0].vmas.find((v: any) => BigInt(v.start) === shm);
    const pv = shmVma(w.pid);
    const cv = shmVma(child);
    for (const v of [pv, cv]) {
      expect(v).toBeDefined();
      expect(BigInt(v.end) - BigInt(v.start)).toBe(16n * BigInt(PG));
      // VMA_AREA_REGULAR | VMA_FILE_SHARED | VMA_AREA_MEMFD, MAP_SHARED (CRIU 4.2's memfd path for anon shmem)
      expect(v.status).toBe(0x4081);
      expect(v.flags & 1).toBe(1);
    }
    // the vma's shmid is a file id: one MEMFD file, shared by both tasks, whose inode names the object
    expect(cv.shmid).toBe(pv.shmid);
    const file = images['files.img'].entries.find((f: any) => f.id === pv.shmid);
    expect(file.type).toBe('MEMFD');
    const inodes = images['memfd.img'].entries;
    expect(inodes).toHaveLength(1);
    expect(inodes[0]).toMatchObject({ name: '/dev/zero', size: 16 * PG, shmid: Number(ino), inode_id: file.memfd.inode_id });
    const shmImg = `pagemap-shmem-${ino}.img`;
    expect(images[shmImg].magic).toBe('PAGEMAP'); // CRIU's SHMEM_PAGEMAP magic is PAGEMAP's
    // offsets in the object: pages 0-8 hold data (8 from the parent, 1 from the child), 9-15 never touched
    const { pagesId, runs } = pagemapRuns(path.join(dir, shmImg));
    expect(runs.map((r) => [r.vaddr, r.nr, r.flags & 4])).toEqual([[0n, 9, 4]]);
    const pages = readFileSync(path.join(dir, `pages-${pagesId}.img`));
    expect(pages.length).toBe(9 * PG);
    for (let i = 0; i < 9; i++) {
      const want = i < 8 ? 0x30 + i : 0x77;
      expect(pages.subarray(i * PG, (i + 1) * PG).every((b) => b === want), `page ${i}`).toBe(true);
    }
    // the tasks' own pagemaps leave the shared area out
    for (const pid of [w.pid, child]) {
      const own = pagemapRuns(path.join(dir, `pagemap-${pid}.img`)).runs;
      expect(own.some((r) => r.vaddr < shm + 16n * BigInt(PG) && r.vaddr + BigInt(r.nr * PG) > shm)).toBe(false);
    }
    const st = images['stats-dump'].entries[0].dump;
    expect(st.shpages_scanned).toBe(16);
    expect(st.shpages_written).toBe(9);
    expect(w.check()).toBe('check ok');
  });
});
