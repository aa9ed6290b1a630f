import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VMA } from '@crtools/images/facts';
import { alive, criu, critDecode, haveCrit, killAllStarted, killTree, ourCritDecode, startWorkload, tmp, waitReaped } from './helpers.js';

afterAll(() => killAllStarted());

/** The pages all pages-*.img of a directory hold (each page 4096 bytes). */
function pagesInImages(dir: string): number {
  return readdirSync(dir).filter((f) => /^pages-\d+\.img$/.test(f)).reduce((n, f) => n + statSync(path.join(dir, f)).size / 4096, 0);
}

const DUMP_LINES = [
  'Displaying dump stats:', /^Freezing time: \d+ us$/, /^Frozen time: \d+ us$/, /^Memory dump time: \d+ us$/, /^Memory write time: \d+ us$/,
  /^IRMAP resolve time: \d+ us$/, /^Memory pages scanned: (\d+) \(0x([0-9a-f]+)\)$/, /^Memory pages skipped from parent: 0 \(0x0\)$/,
  /^Memory pages written: (\d+) \(0x([0-9a-f]+)\)$/, /^Lazy memory pages: 0 \(0x0\)$/,
];
const RESTORE_LINES = [
  'Displaying restore stats:', /^Pages compared: 0 \(0x0\)$/, /^Pages skipped COW: 0 \(0x0\)$/, /^Pages restored: (\d+) \(0x([0-9a-f]+)\)$/,
  /^Restore time: \d+ us$/, /^Forking time: \d+ us$/,
];

function matchLines(stdout: string, want: (string | RegExp)[]): void {
  const lines = stdout.split('\n').filter(Boolean);
  expect(lines).toHaveLength(want.length);
  want.forEach((w, i) => (typeof w === 'string' ? expect(lines[i]).toBe(w) : expect(lines[i]).toMatch(w)));
}

describe('stats-dump, stats-restore and --display-stats (as CRIU writes and prints them)', () => {
  const root = tmp('stats');
  const img = path.join(root, 'img');
  const work = path.join(root, 'work');
  const rwork = path.join(root, 'rwork');

  it('dump -W: stats-dump in the work directory, its pages_written + shpages_written = the pages images; --display-stats prints CRIU\'s lines', () => {
    const w = startWorkload('pattern', ['2']);
    const r = criu(['dump', '-t', String(w.pid), '-D', img, '-W', work, '--display-stats']);
    expect(r.code, r.stderr).toBe(0);
    matchLines(r.stdout, DUMP_LINES);
    expect(existsSync(path.join(work, 'stats-dump')) && !existsSync(path.join(img, 'stats-dump'))).toBe(true);
    const d = ourCritDecode(path.join(work, 'stats-dump')).entries[0].dump;
    expect(Number(d.pages_written) + Number(d.shpages_written)).toBe(pagesInImages(img));
    expect(Number(d.pages_written)).toBeGreaterThan(500); // the workload's 2 MiB pattern, at least
    expect(r.stdout).toContain(`Memory pages written: ${d.pages_written} (0x${Number(d.pages_written).toString(16)})`);
    for (const k of ['freezing_time', 'frozen_time', 'memdump_time', 'memwrite_time', 'pages_scanned', 'shpages_scanned', 'shpages_written']) expect(d[k], k).toBeDefined();
    expect(waitReaped(w.pid)).toBe(true); // killed by the dump; its pid is free for the restore
  });

  it.skipIf(!haveCrit)('Debian\'s crit decodes stats-dump to the same numbers', () => {
    const ours = ourCritDecode(path.join(work, 'stats-dump')).entries[0].dump;
    const theirs = critDecode(path.join(work, 'stats-dump')).entries[0].dump;
    expect(Number(theirs.pages_written)).toBe(Number(ours.pages_written));
    expect(Number(theirs.pages_scanned)).toBe(Number(ours.pages_scanned));
  });

  it('restore -W --display-stats: stats-restore in the work directory, pages restored = the pages images; CRIU\'s lines on stdout', () => {
    const r = criu(['restore', '-D', img, '-W', rwork, '-d', '--display-stats'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(readdirSync(img).find((f) => f.startsWith('core-'))!.match(/\d+/)![0]);
    try {
      matchLines(r.stdout, RESTORE_LINES);
      const s = ourCritDecode(path.join(rwork, 'stats-restore')).entries[0].restore;
      // every page of the images but the vdso's (the kernel maps the vdso afresh; CRIU dumps it too)
      const mm = ourCritDecode(path.join(img, `mm-${pid}.img`)).entries[0];
      const vdso = mm.vmas.filter((v: any) => (Number(v.status) & (VMA.AREA_VDSO | VMA.AREA_VVAR)) !== 0).map((v: any) => [BigInt(v.start), BigInt(v.end)]);
      const vdsoPages = ourCritDecode(path.join(img, `pagemap-${pid}.img`)).entries.slice(1)
        .filter((e: any) => vdso.some(([a, b]: bigint[]) => a! <= BigInt(e.vaddr) && BigInt(e.vaddr) < b!))
        .reduce((n: number, e: any) => n + Number(e.nr_pages), 0);
      expect(Number(s.pages_restored)).toBe(pagesInImages(img) - vdsoPages);
      expect(Number(s.pages_restored)).toBeGreaterThan(500);
      expect(r.stdout).toContain(`Pages restored: ${s.pages_restored} (0x${Number(s.pages_restored).toString(16)})`);
      expect(Number(s.restore_time)).toBeGreaterThanOrEqual(Number(s.forking_time));
      expect(alive(pid)).toBe(true);
    } finally {
      killTree(pid);
    }
  });
});
