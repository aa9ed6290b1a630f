/**
 * A task's address space as smaps and pagemap show it: every area (range, protection, offset,
 * backing file, the kernel's VmFlags, guard pages) and, across the whole tree, which anonymous
 * pages are one physical page (copy-on-write sharing after fork).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { PAGE_SHIFT } from '@crtools/common';
import { ANON_HUGEPAGE, iterSmaps, openPagemap, PM, type Vma } from '@crtools/procfs';

export interface AreaPrint {
  /** "start-end" in hex */
  range: string;
  perms: string;
  /** file offset, hex */
  pgoff: string;
  /** path or special name ('[heap]', '[stack]'); '' for plain anonymous memory */
  name: string;
  deleted: boolean;
  /** "major:minor inode" of the backing file; objects made anew by a restore (anonymous shared memory, memfd, SysV segments, unlinked files, sockets whose rings are mapped) as "shm#N", "deleted#N", "socket#N" */
  backing: string;
  /** smaps VmFlags, sorted */
  vmFlags: string[];
  /** pages in guard regions (MADV_GUARD_INSTALL) */
  guardPages: number;
  /** the size of the area's pages (smaps KernelPageSize), when not the base page: huge pages */
  pageSize?: number;
  /** an AIO ring (`/[aio]`): its header's events, head and tail (what io_getevents reads next) */
  aioRing?: { nr: number; head: number; tail: number };
}

/** VmFlags that say what the kernel did, not what the program asked: soft-dirty tracking. */
const RUN_FLAGS = new Set(['sd']);

/** Areas backed by an object with no name of its own: their inode is the object's id for this run only. */
function transient(v: Vma): string | undefined {
  if (v.ino === 0n) return undefined;
  // private anonymous huge pages: a file of hugetlbfs per mmap (a parent and its child share it
  // after fork, and again once restored: only its identity is the run's)
  if (!v.shared && v.name === ANON_HUGEPAGE && v.vmFlags?.includes('ht')) return 'hugepage';
  if (v.kind === 'shmem' || v.kind === 'sysvipc') return 'shm';
  // a packet socket's rings: the socket is made anew
  if (v.kind === 'socket') return 'socket';
  // an unlinked file: the restore makes it anew, under a new inode
  return v.deleted ? 'deleted' : undefined;
}

const PAGE = 1n << BigInt(PAGE_SHIFT);
/** The header of the AIO ring at `start` of task pid (struct aio_ring: id, nr, head, tail), read from /proc/PID/mem. */
function aioRingOf(pid: number, start: bigint): AreaPrint['aioRing'] {
  let fd: number | undefined;
  try {
    fd = openSync(`/proc/${pid}/mem`, 'r');
    const h = Buffer.alloc(16);
    if (readSync(fd, h, 0, 16, start) !== 16) return undefined;
    return { nr: h.readUInt32LE(4), head: h.readUInt32LE(8), tail: h.readUInt32LE(12) };
  } catch {
    return undefined; // gone
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** pagemap entries read per pread */
const CHUNK_PAGES = 1 << 16;

/** Calls `each(vaddr, entry)` for the present (or guard) pagemap entries of [start, end) of task pid, read in chunks. */
function eachPresent(pid: number, start: bigint, end: bigint, each: (vaddr: bigint, e: bigint) => void): void {
  let pm;
  try {
    pm = openPagemap(pid);
  } catch {
    return; // gone
  }
  try {
    for (let a = start; a < end; ) {
      const pages = Number((end - a) / PAGE < BigInt(CHUNK_PAGES) ? (end - a) / PAGE : BigInt(CHUNK_PAGES));
      const entries = pm.entries(a, pages);
      entries.forEach((e, i) => {
        if (e & (PM.PRESENT | PM.GUARD)) each(a + BigInt(i) * PAGE, e);
      });
      if (entries.length < pages) break;
      a += BigInt(pages) * PAGE;
    }
  } finally {
    pm.close();
  }
}

export interface SharingCollector {
  /** anonymous pages by physical page: "pid:vaddr" of each mapping */
  byPfn: Map<bigint, string[]>;
  /** the physical pages of those that are huge pages (areas with VmFlags ht) */
  hugePfns: Set<bigint>;
  /** ids given to transient objects, by "dev:ino" */
  shmIds: Map<string, number>;
}

export function sharingCollector(): SharingCollector {
  return { byPfn: new Map(), hugePfns: new Set(), shmIds: new Map() };
}

/** The areas of task pid; its present anonymous pages go into `c` (for the tree's sharing groups). */
export function areasOf(pid: number, c: SharingCollector): AreaPrint[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return [];
  }
  const out: AreaPrint[] = [];
  for (const v of iterSmaps(text, { path: `/proc/${pid}/smaps` })) {
    const dev = `${v.devMajor.toString(16).padStart(2, '0')}:${v.devMinor.toString(16).padStart(2, '0')}`;
    let backing = v.ino === 0n ? '' : `${dev} ${v.ino}`;
    const kind = transient(v);
    if (kind) {
      const key = `${dev}:${v.ino}`;
      if (!c.shmIds.has(key)) c.shmIds.set(key, c.shmIds.size + 1);
      backing = `${kind}#${c.shmIds.get(key)}`;
    }
    let guardPages = 0;
    // a PROT_NONE area holds no present page, but guard regions are marked in any area
    if (v.name !== '[vsyscall]') {
      const privateArea = !v.shared;
      const huge = v.vmFlags?.includes('ht') ?? false;
      eachPresent(pid, v.start, v.end, (vaddr, e) => {
        if (e & PM.GUARD) guardPages++;
        if (!(e & PM.PRESENT) || !privateArea || e & PM.FILE) return;
        const pfn = e & PM.PFN_MASK;
        if (pfn === 0n) return; // no PFNs without CAP_SYS_ADMIN
        if (huge) c.hugePfns.add(pfn);
        const list = c.byPfn.get(pfn);
        const who = `${pid}:${vaddr.toString(16)}`;
        if (list) list.push(who);
        else c.byPfn.set(pfn, [who]);
      });
    }
    const area: AreaPrint = {
      range: `${v.start.toString(16)}-${v.end.toString(16)}`,
      perms: v.perms,
      pgoff: v.pgoff.toString(16),
      // (a socket's name is its inode: its id here instead)
      name: kind === 'socket' ? backing : v.name,
      deleted: v.deleted,
      backing,
      vmFlags: (v.vmFlags ?? []).filter((f) => !RUN_FLAGS.has(f)).sort(),
      guardPages,
      ...(v.smaps?.['KernelPageSize'] !== undefined && v.smaps['KernelPageSize'] !== Number(PAGE) ? { pageSize: v.smaps['KernelPageSize'] } : {}),
      ...(v.kind === 'aio' ? { aioRing: aioRingOf(pid, v.start) } : {}),
    };
    out.push(area);
  }
  return joinAreas(out);
}

/**
 * Adjacent plain private anonymous areas alike in everything shown are one: the kernel keeps
 * such areas apart only while their pages belong to different anon_vma objects (a fork, an
 * area that grew into its neighbour), which nothing of the program's sees but the number of
 * lines in its maps, and areas mapped afresh (by a restore) merge. (CRIU's zdtm compares maps
 * the same way; test/restore/roundtrip.ts's mapsOf too.)
 */
export function joinAreas(areas: readonly AreaPrint[]): AreaPrint[] {
  const out: AreaPrint[] = [];
  for (const a of areas) {
    const last = out[out.length - 1];
    if (last && joinable(last, a)) out[out.length - 1] = { ...last, range: `${last.range.split('-')[0]}-${a.range.split('-')[1]}`, guardPages: last.guardPages + a.guardPages };
    else out.push(a);
  }
  return out;
}

function joinable(a: AreaPrint, b: AreaPrint): boolean {
  const plain = (x: AreaPrint) => x.name === '' && x.backing === '' && !x.deleted && x.perms.endsWith('p') && x.pageSize === undefined && x.aioRing === undefined;
  return plain(a) && plain(b) && a.range.split('-')[1] === b.range.split('-')[0] && a.perms === b.perms && a.vmFlags.join() === b.vmFlags.join();
}

/** /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst) */
const KPF_KSM = 21n;
const KPF_ZERO_PAGE = 24n;

/**
 * The groups of mappings that are one physical anonymous page, each "pid:vaddr" list sorted,
 * the groups sorted. The zero page and KSM-merged pages are left out: the kernel shares
 * those by content, not because the program did. `huge`: the groups of huge pages instead
 * (kept apart: see NOT_CARRIED_YET), which are not in the others.
 */
export function sharingGroups(c: SharingCollector, huge = false): string[][] {
  let kpf: number | undefined;
  try {
    kpf = openSync('/proc/kpageflags', 'r');
  } catch {
    kpf = undefined;
  }
  const buf = Buffer.alloc(8);
  const groups: string[][] = [];
  try {
    for (const [pfn, who] of c.byPfn) {
      if (who.length < 2 || c.hugePfns.has(pfn) !== huge) continue;
      if (kpf !== undefined && readSync(kpf, buf, 0, 8, Number(pfn * 8n)) === 8) {
        const f = buf.readBigUInt64LE(0);
        if ((f >> KPF_ZERO_PAGE) & 1n || (f >> KPF_KSM) & 1n) continue;
      }
      groups.push([...who].sort());
    }
  } finally {
    if (kpf !== undefined) closeSync(kpf);
  }
  return groups.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

/**
 * What the pages that could become one page by content hold: every anonymous page of an address
 * where tasks of the tree have different physical pages (a child that wrote a page after fork
 * has its own copy at the parent's address). A restore may make such pages one again where
 * their contents are equal (compareFingerprints accepts that, and only that); a digest per
 * "pid:vaddr" (sha256, 128 bits), each physical page read once through /proc/PID/mem.
 */
export function pageDigests(c: SharingCollector): Record<string, string> {
  const byAddr = new Map<string, Set<bigint>>();
  for (const [pfn, who] of c.byPfn) {
    for (const w of who) {
      const addr = w.slice(w.indexOf(':') + 1);
      let s = byAddr.get(addr);
      if (!s) byAddr.set(addr, (s = new Set()));
      s.add(pfn);
    }
  }
  const out: Record<string, string> = {};
  const fds = new Map<string, number | null>();
  const page = Buffer.alloc(Number(PAGE));
  const digestOf = new Map<bigint, string | undefined>();
  try {
    for (const [pfn, who] of c.byPfn) {
      if (!who.some((w) => byAddr.get(w.slice(w.indexOf(':') + 1))!.size > 1)) continue;
      let d = digestOf.get(pfn);
      if (!digestOf.has(pfn)) {
        const [pid, addr] = who[0]!.split(':') as [string, string];
        let fd = fds.get(pid);
        if (fd === undefined) {
          try {
            fd = openSync(`/proc/${pid}/mem`, 'r');
          } catch {
            fd = null;
          }
          fds.set(pid, fd);
        }
        d = fd !== null && readSync(fd, page, 0, page.length, Number(BigInt(`0x${addr}`))) === page.length ? createHash('sha256').update(page).digest('hex').slice(0, 32) : undefined;
        digestOf.set(pfn, d);
      }
      if (d) for (const w of who) out[w] = d;
    }
  } finally {
    for (const fd of fds.values()) if (fd !== null && fd !== undefined) closeSync(fd);
  }
  return out;
}
