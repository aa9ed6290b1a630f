import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import type { KerndatPart } from '../types.js';
import { MAP, NR, PAGE, PROT, closeFd, mmapAnon, munmap, raw, forkProbe } from '../sys.js';
import { native } from '../load-native.js';
import { PM, readMaps } from '@crtools/procfs';
import { MADV_GUARD_INSTALL, PAGE_IS, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, pagemapScan, type PageRegion } from '@crtools/sys';
import { pagemapEntry, readSelfMem, readTrim, writeSelfMem } from '../procfs-lite.js';

const selfMaps = () => readMaps(process.pid);

const PM_PRESENT = PM.PRESENT;
const PM_SOFT_DIRTY = PM.SOFT_DIRTY;
const PM_PFN_MASK = PM.PFN_MASK;

export function probePageSize(): KerndatPart {
  // The distance between two pages of one fresh mapping, as the kernel lays them out.
  const addr = mmapAnon(1n, PROT.READ, MAP.PRIVATE);
  try {
    const m = selfMaps().find((l) => l.start === addr);
    return { page_size: Number(m ? m.end - m.start : PAGE) };
  } finally {
    munmap(addr, 1n);
  }
}

/**
 * TASK_SIZE: the end of the user address space. Binary search with
 * MAP_FIXED_NOREPLACE (never clobbers a mapping): a page just below the end
 * maps (or is already taken: EEXIST), a page past it fails with ENOMEM.
 */
export function probeTaskSize(): KerndatPart {
  const page = PAGE;
  const ok = (end: bigint): boolean => {
    const r = raw(NR.mmap, end - page, page, PROT.NONE, MAP.PRIVATE | MAP.ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0);
    if (r.errno === 0) {
      munmap(r.ret, page);
      return true;
    }
    return r.errno === 17; // EEXIST: taken, so below the end
  };
  let lo = 1n << 40n; // known good
  let hi = 1n << 64n; // known bad
  if (!ok(lo)) return {};
  while (hi - lo > page) {
    const mid = ((lo + hi) / 2n / page) * page;
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return { task_size: lo };
}

export function probeMmapMinAddr(): KerndatPart {
  return { mmap_min_addr: BigInt(readTrim('/proc/sys/vm/mmap_min_addr')) };
}

/**
 * Map a MAP_GROWSDOWN area and compare its real start with the start
 * /proc/self/maps shows. Kernels since 4.12 show the real start: CRIU's
 * stack_guard_gap_hidden is then false. Older kernels hid the guard page (maps
 * shows start + one page) and some distro kernels hid 1 MiB: CRIU's flag is
 * true, and it moves such areas' starts back down by a page when dumping.
 * `stack_guard_gap` is the measured difference in bytes.
 */
export function probeStackGuardGap(): KerndatPart {
  const len = 2n << 20n; // larger than the biggest gap a kernel ever hid (1 MiB)
  const addr = mmapAnon(len, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.GROWSDOWN | MAP.NORESERVE);
  try {
    const m = selfMaps().find((l) => l.end === addr + len);
    if (!m || m.start < addr) throw new Error('the MAP_GROWSDOWN area is not in /proc/self/maps');
    const gap = Number(m.start - addr);
    return { stack_guard_gap_hidden: gap !== 0, stack_guard_gap: gap };
  } finally {
    munmap(addr, len);
  }
}

/** Read-fault an anonymous page: the kernel maps its zero page, pagemap shows its PFN. */
export function probeZeroPageAndPagemap(): KerndatPart {
  // Pages 0 and 2 are only read, page 1 is written. Where read faults of anonymous memory map the
  // kernel's shared zero page, pages 0 and 2 show one and the same PFN. Some kernels give every
  // read fault a page of its own (seen on a 6.18 kernel of this machine kind): then there is no
  // zero page to recognise, and zero_page_pfn stays out of the document. A PFN taken from such a
  // private page would be reused for some other data page later, which a dump would then skip.
  const len = 3n * PAGE;
  const addr = mmapAnon(len, PROT.READ | PROT.WRITE, MAP.PRIVATE);
  try {
    readSelfMem(addr, 1);
    readSelfMem(addr + 2n * PAGE, 1);
    writeSelfMem(addr + PAGE, Buffer.from([0x5a])); // write fault -> a private page
    const [a, b] = [pagemapEntry(addr), pagemapEntry(addr + 2n * PAGE)];
    const written = pagemapEntry(addr + PAGE);
    const pfnVisible = (written & PM_PRESENT) !== 0n && (written & PM_PFN_MASK) !== 0n;
    const part: KerndatPart = {
      pmap: pfnVisible ? 'PM_FULL' : 'PM_FLAGS_ONLY',
      has_dirty_track: (written & PM_SOFT_DIRTY) !== 0n,
    };
    if (pfnVisible) {
      const pfn = a & PM_PFN_MASK;
      part.has_zero_page = (a & PM_PRESENT) !== 0n && (b & PM_PRESENT) !== 0n && pfn !== 0n && pfn === (b & PM_PFN_MASK);
      if (part.has_zero_page) part.zero_page_pfn = pfn;
    }
    return part;
  } finally {
    munmap(addr, len);
  }
}

const { WRITTEN: PAGE_IS_WRITTEN, FILE: PAGE_IS_FILE, PRESENT: PAGE_IS_PRESENT, SWAPPED: PAGE_IS_SWAPPED, PFNZERO: PAGE_IS_PFNZERO, SOFT_DIRTY: PAGE_IS_SOFT_DIRTY, GUARD: PAGE_IS_GUARD } = PAGE_IS;

/** One PAGEMAP_SCAN call (8 regions at most): the regions, or the errno that refused it. */
function pmScan(fd: number, start: bigint, end: bigint, anyof: bigint, ret: bigint, flags = 0n, mask = 0n): { errno: number; regions: PageRegion[] } {
  try {
    return { errno: 0, regions: pagemapScan(fd, { start, end, flags, categoryMask: mask, categoryAnyofMask: anyof, returnMask: ret, vecLen: 8 }).regions };
  } catch (e) {
    return { errno: -((e as { errno?: number }).errno ?? -22), regions: [] };
  }
}

/** PAGEMAP_SCAN (6.7+) and its guard-region category, and MADV_GUARD_INSTALL (6.13+). */
export function probePagemapScan(): KerndatPart {
  const len = 4n * PAGE;
  const addr = mmapAnon(len, PROT.READ | PROT.WRITE, MAP.PRIVATE);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    writeSelfMem(addr, Buffer.from([1]));
    const s = pmScan(fd, addr, addr + len, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_SOFT_DIRTY | PAGE_IS_FILE | PAGE_IS_PFNZERO | PAGE_IS_WRITTEN);
    const has_pagemap_scan = s.errno === 0 && s.regions.length === 1 && s.regions[0]!.start === addr;
    const part: KerndatPart = { has_pagemap_scan };
    const g = raw(NR.madvise, addr + 2n * PAGE, PAGE, MADV_GUARD_INSTALL);
    part.has_madv_guard = g.errno === 0;
    if (has_pagemap_scan) {
      const gs = pmScan(fd, addr, addr + len, PAGE_IS_GUARD, PAGE_IS_GUARD);
      part.has_pagemap_scan_guard_pages =
        gs.errno === 0 && (!part.has_madv_guard || gs.regions.some((r) => r.start === addr + 2n * PAGE && (r.categories & PAGE_IS_GUARD) !== 0n));
    } else part.has_pagemap_scan_guard_pages = false;
    // bit 58 of the guard page's own pagemap entry (6.15+): how a dump finds guard regions
    // where PAGEMAP_SCAN has no guard category
    if (part.has_madv_guard) part.has_pagemap_guard_bit = (pagemapEntry(addr + 2n * PAGE) & PM.GUARD) !== 0n;
    return part;
  } finally {
    closeSync(fd);
    munmap(addr, len);
  }
}

const UFFDIO_API = 0xc018aa3f;
const UFFDIO_REGISTER = 0xc020aa00;
const UFFD_API = 0xaa;
const UFFD_FEATURES = [
  'PAGEFAULT_FLAG_WP', 'EVENT_FORK', 'EVENT_REMAP', 'EVENT_REMOVE', 'MISSING_HUGETLBFS', 'MISSING_SHMEM',
  'EVENT_UNMAP', 'SIGBUS', 'THREAD_ID', 'MINOR_HUGETLBFS', 'MINOR_SHMEM', 'EXACT_ADDRESS',
  'WP_HUGETLBFS_SHMEM', 'WP_UNPOPULATED', 'POISON', 'WP_ASYNC', 'MOVE',
];

/** Names of the UFFD_FEATURE_* bits set in a features word. */
export function uffdFeatureNames(features: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((features >> BigInt(i)) & 1n) out.push(UFFD_FEATURES[i] ?? `bit${i}`);
  return out;
}

/** A userfaultfd, after the API handshake asking for `features`; undefined when refused. */
function openUffd(features: bigint): { fd: number; features: bigint } | undefined {
  let r = raw(NR.userfaultfd, 0o2000000 | 0o4000);
  if (r.ret === -1n) {
    // vm.unprivileged_userfaultfd=0: the /dev/userfaultfd route (USERFAULTFD_IOC_NEW)
    try {
      const dev = openSync('/dev/userfaultfd', 'r+');
      r = raw(NR.ioctl, dev, 0xaa00, 0o2000000 | 0o4000);
      closeSync(dev);
    } catch {
      /* absent */
    }
  }
  if (r.ret === -1n) return undefined;
  const fd = Number(r.ret);
  const api = Buffer.alloc(24);
  api.writeBigUInt64LE(BigInt(UFFD_API), 0);
  api.writeBigUInt64LE(features, 8);
  if (raw(NR.ioctl, fd, UFFDIO_API, api).errno !== 0) {
    closeFd(fd);
    return undefined;
  }
  return { fd, features: api.readBigUInt64LE(8) };
}

/** userfaultfd(2) and the features its API handshake offers. */
export function probeUffd(): KerndatPart {
  const u = openUffd(0n);
  if (!u) return { has_uffd: false, uffd_features: 0n, uffd_feature_names: [] };
  closeFd(u.fd);
  return { has_uffd: true, uffd_features: u.features, uffd_feature_names: uffdFeatureNames(u.features) };
}

/**
 * Dirty tracking without soft-dirty: register an area for async uffd
 * write-protect, reset it with PAGEMAP_SCAN(WP_MATCHING), write one page with
 * read(2) from /dev/zero, and check PAGE_IS_WRITTEN reports exactly that page.
 */
export function probeUffdWpDirtyTrack(sofar: KerndatPart): KerndatPart {
  const r = uffdWpDirtyTrack(sofar);
  return { ...r, mem_dirty_track_method: sofar.has_dirty_track ? 'soft-dirty' : r.has_pagemap_scan_dirty_track ? 'uffd-wp' : 'none' };
}

function uffdWpDirtyTrack(sofar: KerndatPart): KerndatPart {
  if (!sofar.has_pagemap_scan) return { has_pagemap_scan_dirty_track: false };
  const WP_ASYNC = 1n << 15n;
  const WP_UNPOPULATED = 1n << 13n;
  const u = openUffd(WP_ASYNC | WP_UNPOPULATED);
  if (!u) return { has_pagemap_scan_dirty_track: false };
  const len = 4n * PAGE;
  let addr = 0n;
  const pm = openSync('/proc/self/pagemap', 'r');
  const zero = openSync('/dev/zero', 'r');
  try {
    addr = mmapAnon(len, PROT.READ | PROT.WRITE, MAP.PRIVATE);
    const reg = Buffer.alloc(32);
    reg.writeBigUInt64LE(addr, 0);
    reg.writeBigUInt64LE(len, 8);
    reg.writeBigUInt64LE(2n /* UFFDIO_REGISTER_MODE_WP */, 16);
    if (raw(NR.ioctl, u.fd, UFFDIO_REGISTER, reg).errno !== 0) return { has_pagemap_scan_dirty_track: false };
    const reset = pmScan(pm, addr, addr + len, 0n, PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN);
    if (reset.errno !== 0) return { has_pagemap_scan_dirty_track: false };
    if (raw(NR.read, zero, addr + PAGE, 16).ret !== 16n) return { has_pagemap_scan_dirty_track: false };
    const scan = pmScan(pm, addr, addr + len, 0n, PAGE_IS_WRITTEN, 0n, PAGE_IS_WRITTEN);
    const ok = scan.errno === 0 && scan.regions.length === 1 && scan.regions[0]!.start === addr + PAGE && scan.regions[0]!.end === addr + 2n * PAGE;
    return { has_pagemap_scan_dirty_track: ok };
  } finally {
    closeSync(zero);
    closeSync(pm);
    closeFd(u.fd);
    if (addr) munmap(addr, len);
  }
}

export function probeThp(): KerndatPart {
  return { has_thp_disable: raw(NR.prctl, 42 /* PR_GET_THP_DISABLE */, 0, 0, 0, 0).errno === 0 };
}

/** memfd_create, with MFD_HUGETLB, and memfd_secret. */
export function probeMemfd(): KerndatPart {
  const name = Buffer.from('crtools-kerndat\0');
  const tryFd = (r: { ret: bigint; errno: number }): boolean => {
    if (r.ret === -1n) return false;
    closeFd(r.ret);
    return true;
  };
  return {
    has_memfd: tryFd(raw(NR.memfd_create, name, 1 /* MFD_CLOEXEC */)),
    has_memfd_hugetlb: tryFd(raw(NR.memfd_create, name, 1 | 4 /* MFD_HUGETLB */)),
    has_memfd_secret: tryFd(raw(NR.memfd_secret, 0o2000000)),
  };
}

/** AIO rings can be moved with mremap and still work (CRIU's aio_remap). */
export function probeAioRemap(): KerndatPart {
  const ctxBuf = Buffer.alloc(8);
  if (raw(NR.io_setup, 16, ctxBuf).errno !== 0) return { has_aio_remap: false };
  let ctx = ctxBuf.readBigUInt64LE(0);
  try {
    const ring = selfMaps().find((l) => l.start === ctx);
    if (!ring || !ring.name.startsWith('/[aio]')) return { has_aio_remap: false };
    const len = ring.end - ring.start;
    const dst = mmapAnon(len, PROT.READ | PROT.WRITE, MAP.PRIVATE);
    const m = raw(NR.mremap, ctx, len, len, 3 /* MAYMOVE|FIXED */, dst);
    if (m.ret !== dst) {
      munmap(dst, len);
      return { has_aio_remap: false };
    }
    ctx = dst;
    const ev = raw(NR.io_getevents, ctx, 0, 1, 0, 0);
    return { has_aio_remap: ev.errno === 0 };
  } finally {
    raw(NR.io_destroy, ctx);
  }
}


/**
 * The device of anonymous shared memory (CRIU's shmem_dev: how dumps tell
 * MAP_SHARED|MAP_ANONYMOUS areas from files) and of hugetlb memfds
 * (hugetlb_dev, per huge page size). st_dev values as stat(2) gives them.
 */
export function probeShmemDevs(): KerndatPart {
  const part: KerndatPart = {};
  const addr = mmapAnon(PAGE, PROT.READ | PROT.WRITE, MAP.SHARED);
  try {
    const name = `${addr.toString(16)}-${(addr + PAGE).toString(16)}`;
    part.shmem_dev = Number(statSync(`/proc/self/map_files/${name}`, { bigint: true }).dev);
  } finally {
    munmap(addr, PAGE);
  }
  const huge: Record<string, number> = {};
  for (const [label, shift] of [['2M', 21], ['1G', 30]] as const) {
    const r = raw(NR.memfd_create, Buffer.from('crtools-kerndat-huge\0'), 1 | 4 | (shift << 26));
    if (r.ret === -1n) continue;
    try {
      huge[label] = Number(fstatSync(Number(r.ret), { bigint: true }).dev);
    } finally {
      closeFd(r.ret);
    }
  }
  part.hugetlb_dev = huge;
  return part;
}

/**
 * Mappings a dump must recognise on today's kernels: MAP_DROPPABLE (6.11+,
 * contents may vanish, never dumped) and mseal(2) (6.10+, sealed areas cannot
 * be unmapped or remapped; tried in a forked child since sealing is permanent).
 */
export function probeNewMappings(): KerndatPart {
  const d = raw(NR.mmap, 0, PAGE, PROT.READ | PROT.WRITE, 0x08 /* MAP_DROPPABLE */ | MAP.ANONYMOUS, -1, 0);
  if (d.errno === 0) munmap(d.ret, PAGE);
  const st = forkProbe('mseal', [], 3000);
  return { has_map_droppable: d.errno === 0, has_mseal: st.exited && st.code === 0 };
}
