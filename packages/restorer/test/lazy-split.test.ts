import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptConnection, closeFd, pollInput, sendWithFds, streamListen } from '@crtools/sys';
import { decodeLazySplits, encodeLazySplits, fileIdent, LAZY_PAGES_SOCKET, LAZY_SPLIT_MAGIC, LAZY_SPLIT_MAX, LazyPagesClient, sameFile, type LazySplit } from '../src/lazy-socket.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'crtools-lazy-split-'));
  dirs.push(d);
  return d;
}

function split(pid: number, dir: string, nranges = 2): LazySplit {
  writeFileSync(join(dir, `pagemap-${pid}.img`), 'p');
  writeFileSync(join(dir, `mm-${pid}.img`), 'm');
  return {
    pid,
    pagemap: fileIdent(join(dir, `pagemap-${pid}.img`))!,
    mm: fileIdent(join(dir, `mm-${pid}.img`))!,
    pagesPath: join(dir, 'pages-1.img'),
    entries: 4621,
    ranges: Array.from({ length: nranges }, (_, i) => ({ start: 0x7f0000000000n + BigInt(i) * 0x200000n, end: 0x7f0000100000n + BigInt(i) * 0x200000n })),
    segments: [
      { vaddr: 0x7ffffffde000n, nrPages: 3, path: join(dir, 'pages-1.img'), offset: 0 },
      { vaddr: 0xffffffffff000000n, nrPages: 1, path: join(dir, 'parent', 'pages-2.img'), offset: 8192 },
    ],
  };
}

describe('the lazy-pages daemon\'s splits (lazy-socket.ts)', () => {
  it('go through the message as they were: addresses, runs, files', () => {
    const d = tmp();
    const s = [split(1, d), split(7, d, 5)];
    const msg = encodeLazySplits(s)!;
    expect(msg.readUInt32LE(0)).toBe(LAZY_SPLIT_MAGIC);
    expect(msg.readUInt32LE(4)).toBe(msg.length - 8);
    const back = decodeLazySplits(msg.subarray(8));
    expect([...back.keys()]).toEqual([1, 7]);
    expect(back.get(1)).toEqual(s[0]);
    expect(back.get(7)).toEqual(s[1]);
  });

  it('are not sent when they would not fit the socket\'s buffer whole (the restore walks the pagemap then)', () => {
    const d = tmp();
    expect(encodeLazySplits([split(1, d, 3000)])).toBeUndefined();
    expect(encodeLazySplits([split(1, d, 100)])!.length).toBeLessThanOrEqual(LAZY_SPLIT_MAX);
  });

  it('are taken only for the files the daemon read: another file, or the same one changed, is not the same', () => {
    const d = tmp();
    const a = join(d, 'a.img');
    writeFileSync(a, 'x');
    const before = fileIdent(a);
    expect(sameFile(before, fileIdent(a))).toBe(true);
    expect(sameFile(before, fileIdent(join(d, 'missing.img')))).toBe(false);
    writeFileSync(join(d, 'b.img'), 'x');
    expect(sameFile(before, fileIdent(join(d, 'b.img')))).toBe(false);
    utimesSync(a, new Date(1000), new Date(2000));
    expect(sameFile(before, fileIdent(a))).toBe(false);
  });

  it('are read by the restore without waiting: none sent (CRIU\'s daemon) is no split, one sent is taken whole', () => {
    const d = tmp();
    const lfd = streamListen(join(d, LAZY_PAGES_SOCKET));
    let conn = -1;
    let conn2 = -1;
    try {
      const silent = LazyPagesClient.connect(d);
      pollInput([lfd], 1000);
      conn = acceptConnection(lfd)!;
      const t = performance.now();
      expect(silent.splits()).toBeUndefined();
      expect(performance.now() - t).toBeLessThan(100);
      silent.close();

      const ours = LazyPagesClient.connect(d);
      pollInput([lfd], 1000);
      conn2 = acceptConnection(lfd)!;
      const s = [split(3, d)];
      sendWithFds(conn2, encodeLazySplits(s)!);
      expect(ours.splits()?.get(3)).toEqual(s[0]);
      ours.close();
    } finally {
      if (conn >= 0) closeFd(conn);
      if (conn2 >= 0) closeFd(conn2);
      closeFd(lfd);
    }
  });
});
