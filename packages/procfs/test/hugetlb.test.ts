import { describe, expect, it } from 'vitest';
import { ANON_HUGEPAGE, MAP, parseMaps, parseMapsTable, VMA } from '../src/index.js';

/** Areas on huge pages as /proc/PID/maps shows them (the kernel's hugetlbfs mount of 2 MiB pages is 00:11 here). */
const TEXT = [
  '7f0000000000-7f0000200000 rw-p 00000000 00:11 101                        /memfd:huge (deleted)',
  '7f0000200000-7f0000600000 rw-s 00000000 00:11 101                        /memfd:huge (deleted)',
  '7f0000600000-7f0000800000 rw-s 00000000 00:11 102                        /anon_hugepage (deleted)',
  '7f0000800000-7f0000a00000 rw-p 00000000 00:11 103                        /anon_hugepage (deleted)',
  '7f0000a00000-7f0000c00000 rw-s 00000000 00:11 0                          /SYSV5eed0042 (deleted)',
  '7f0000c00000-7f0000c01000 rw-s 00000000 00:01 104                        /dev/zero (deleted)',
  '',
].join('\n');
const HUGE_2MB = 21 << 26;
const opts = { shmemDev: { major: 0, minor: 1 }, hugetlbDevs: [{ major: 0, minor: 0x11, sizeFlag: HUGE_2MB }] };

describe('areas on huge pages, classified as CRIU 4.2 does (hugetlb_dev known)', () => {
  it('private anonymous huge pages: private anonymous memory; the rest on hugetlbfs the memfd way; SysV as SysV; all with MAP_HUGETLB and the size bits (SysV without)', () => {
    const v = parseMaps(TEXT, opts);
    expect(ANON_HUGEPAGE).toBe('/anon_hugepage');
    expect(v.map((a) => [a.kind, a.status, a.flags])).toEqual([
      ['shmem', VMA.AREA_REGULAR | VMA.AREA_MEMFD | VMA.FILE_PRIVATE, MAP.PRIVATE | MAP.HUGETLB | HUGE_2MB],
      ['shmem', VMA.AREA_REGULAR | VMA.AREA_MEMFD | VMA.FILE_SHARED, MAP.SHARED | MAP.HUGETLB | HUGE_2MB],
      ['shmem', VMA.AREA_REGULAR | VMA.AREA_MEMFD | VMA.FILE_SHARED, MAP.SHARED | MAP.HUGETLB | HUGE_2MB],
      ['anon', VMA.AREA_REGULAR | VMA.ANON_PRIVATE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.HUGETLB | HUGE_2MB],
      ['sysvipc', VMA.AREA_REGULAR | VMA.ANON_SHARED | VMA.AREA_SYSVIPC, MAP.SHARED | MAP.ANONYMOUS | MAP.HUGETLB],
      ['shmem', VMA.AREA_REGULAR | VMA.AREA_MEMFD | VMA.FILE_SHARED, MAP.SHARED],
    ]);
    // the table parser agrees
    const t = parseMapsTable(TEXT, opts);
    expect(Array.from(t.status.subarray(0, t.length))).toEqual(v.map((a) => a.status));
    expect(Array.from(t.flags.subarray(0, t.length))).toEqual(v.map((a) => a.flags >>> 0));
  });

  it('without hugetlb_dev an area on hugetlbfs counts as a file', () => {
    const v = parseMaps(TEXT, { shmemDev: { major: 0, minor: 1 } });
    expect(v[3]!.kind).toBe('file');
    expect(v[3]!.flags & MAP.HUGETLB).toBe(0);
  });
});
