/**
 * Memory on huge pages (issue 15), kept as CRIU 4.2 keeps it: private MAP_HUGETLB areas as private
 * anonymous memory (flags MAP_HUGETLB with the size bits, pages in the task's pagemap), shared
 * anonymous huge pages and hugetlb memfds the memfd way (memfd.img hugetlb_flag MFD_HUGETLB with
 * the size bits, pages in pagemap-shmem), SysV SHM_HUGETLB segments of the tree's IPC namespace
 * (ipcns-shm hugetlb_flag). Round trips with the fingerprint harness, Debian's crit decoding the
 * images, CRIU 4.2 restoring our dumps and we restoring its, and a restore refused by name on a
 * machine without enough free huge pages; private huge pages still shared copy-on-write by a
 * parent and its child come back shared (the child takes the parent's area over at its fork),
 * and those the child copied stay its own. Workload test/workloads/hugetlb.c.
 *
 * The tests need 2 MiB huge pages: they raise vm.nr_hugepages for themselves and put the old
 * value back after (also on failure); a kernel without hugetlb skips them, saying so.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '@crtools/images';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, ourCritDecode, killTree, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { CRIU, runBy } from './criu-ref.js';

const NR = '/proc/sys/vm/nr_hugepages';
const HUGE_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const noHugetlb = !existsSync(NR) || !existsSync(HUGE_2M);
/** pages the workload takes at most (ipc mode), and a margin for a restore made beside a dump */
const WANT_FREE = 20;

const MAP_HUGETLB = 0x40000;
const HUGE_2MB = 21 << 26;
const MFD_HUGETLB = 4;
const SHM_HUGETLB = 0o4000;
const VMA_ANON_PRIVATE = 1 << 9;
const VMA_FILE_SHARED = 1 << 7;
const VMA_FILE_PRIVATE = 1 << 6;
const VMA_AREA_MEMFD = 1 << 14;
const VMA_AREA_SYSVIPC = 1 << 10;

function hugeCounter(name: string): number {
  return Number(readFileSync(path.join(HUGE_2M, name), 'utf8'));
}

/** Make `free` huge pages of 2 MiB free beside those in use (vm.nr_hugepages = in use + free). */
function setFree(free: number): void {
  writeFileSync(NR, String(hugeCounter('nr_hugepages') - hugeCounter('free_hugepages') + free));
}

let oldNr: string | undefined;
afterEach(killRestored);
afterAll(() => {
  killAllStarted();
  if (oldNr !== undefined) writeFileSync(NR, oldNr);
});

describe.skipIf(noHugetlb)(`memory on huge pages${noHugetlb ? ' (skipped: this kernel has no hugetlb, or no 2 MiB huge pages: no /sys/kernel/mm/hugepages/hugepages-2048kB)' : ''}`, () => {
  /** why the huge pages the tests need could not be had (the kernel could not make them: memory too fragmented) */
  let short: string | undefined;
  beforeAll(() => {
    oldNr = readFileSync(NR, 'utf8').trim();
    if (hugeCounter('free_hugepages') < WANT_FREE) setFree(WANT_FREE);
    const free = hugeCounter('free_hugepages');
    if (free < WANT_FREE) short = `the kernel made only ${free} free huge pages of 2 MiB, the tests need ${WANT_FREE}`;
  });
  /** a test that skips, saying why, when the huge pages could not be had */
  const hugeIt = (name: string, fn: () => void) => it(name, (ctx) => (short ? ctx.skip(short) : fn()));

  /** The dumped root's child, from pstree.img. */
  const childOf = (dir: string, pid: number): number => (ourCritDecode(path.join(dir, 'pstree.img')).entries as { pid: number; ppid: number }[]).find((t) => t.ppid === pid)!.pid;
  /** Task p's private MAP_HUGETLB areas in mm.img (crtools' crit: the cow_huge field is ours). */
  const privateHuge = (dir: string, p: number) =>
    (ourCritDecode(path.join(dir, `mm-${p}.img`)).entries[0].vmas as { flags: number; cow_huge?: boolean }[]).filter((v) => v.flags & MAP_HUGETLB && !(v.flags & 1 /* MAP_SHARED */));

  /** What the dump wrote, as Debian's crit decodes it (ours for the SysV segment's entry: images README). */
  function checkImages(dir: string, pid: number, ipc: boolean): void {
    // the child copied its private huge pages before the dump: not marked shared
    expect(privateHuge(dir, childOf(dir, pid)).map((v) => v.cow_huge ?? false)).toEqual([false, false]);
    const vmas: any[] = critDecode(path.join(dir, `mm-${pid}.img`)).entries[0].vmas;
    const huge = vmas.filter((v) => v.flags & MAP_HUGETLB);
    // private anonymous huge pages: MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB, their
    // map_files mode beside them
    expect(huge.filter((v) => v.status & VMA_ANON_PRIVATE).map((v) => [v.flags, v.status, v.fdflags])).toEqual([[0x22 | MAP_HUGETLB | HUGE_2MB, 0x201, 2]]);
    // the memfd way: the private mapping of the memfd, its shared mapping (right after it on the
    // same file: no size bits, as CRIU 4.2 writes it), shared anonymous huge pages
    expect(huge.filter((v) => v.status & VMA_AREA_MEMFD).map((v) => [v.flags, v.status & (VMA_FILE_SHARED | VMA_FILE_PRIVATE)])).toEqual([
      [0x02 | MAP_HUGETLB | HUGE_2MB, VMA_FILE_PRIVATE],
      [0x01 | MAP_HUGETLB, VMA_FILE_SHARED],
      [0x01 | MAP_HUGETLB | HUGE_2MB, VMA_FILE_SHARED],
    ]);
    const inodes: any[] = critDecode(path.join(dir, 'memfd.img')).entries;
    expect(inodes.map((m) => [m.name, m.size, m.hugetlb_flag]).sort()).toEqual([
      ['/anon_hugepage', 2 << 20, MFD_HUGETLB | HUGE_2MB],
      ['crtools huge', 4 << 20, MFD_HUGETLB | HUGE_2MB],
    ]);
    if (!ipc) return;
    expect(huge.filter((v) => v.status & VMA_AREA_SYSVIPC).map((v) => [v.flags, v.fdflags])).toEqual([[0x21 | MAP_HUGETLB, 2]]);
    const ns = critDecode(path.join(dir, `ids-${pid}.img`)).entries[0].ipc_ns_id;
    const shm = decodeImage(readFileSync(path.join(dir, `ipcns-shm-${ns}.img`))).entries as any[];
    expect(shm.map((s) => [s.desc.key, Number(s.size), s.hugetlb_flag])).toEqual([[0x5eed0042, 2 << 20, SHM_HUGETLB | HUGE_2MB]]);
  }

  for (const ipc of [false, true]) {
    const mode = ipc ? ' with a SysV segment in its IPC namespace' : '';
    hugeIt(`hugetlb${mode} round trips twice: contents, sharing, memfd (name, size, seals, position), on 2 MiB pages again (fingerprint), verdict ok`, () => {
      roundTrip('hugetlb', ipc ? ['ipc'] : [], (pid, state) => {
        expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      }, true, undefined, [], (dir, pid) => checkImages(dir, pid, ipc));
    });
  }

  hugeIt('a restore on a machine with too few free huge pages is refused by name (one line, exit 4), no process left; restored once they are there', () => {
    const w = startWorkload('hugetlb', []);
    const pids = treePids(w.pid);
    const dir = tmp('hugetlb-few');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    for (const p of pids) expect(waitReaped(p)).toBe(true);
    try {
      setFree(2);
      const r = restoreDir(dir);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/^criu: restore: the checkpoint needs 7 free huge pages of 2 MiB, this machine has 2 \(.*nr_hugepages.*\)\n$/);
      for (const p of pids) expect(existsSync(`/proc/${p}`)).toBe(false);
    } finally {
      setFree(WANT_FREE);
    }
    const r = restoreDir(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
    const now = treePids(w.pid);
    killTree(w.pid);
    for (const p of now) expect(waitGone(p)).toBe(true);
  });

  hugeIt('private huge pages a parent and its child still share copy-on-write since the fork come back shared, twice (fingerprint: the same huge page frames in both; mm.img cow_huge on the child\'s area), verdict ok (CRIU 4.2 gives each task a copy)', () => {
    roundTrip('hugetlb', ['cow'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      // one physical huge page in both tasks, as the fork left it
      const print = fingerprint(pid);
      expect(print.sharedHugePages?.length, JSON.stringify(print.sharedHugePages)).toBeGreaterThan(0);
    }, true, undefined, [], (dir, pid) => {
      // the child's private huge pages (the anonymous area and the memfd's private mapping):
      // both still shared with its parent's, marked; the parent's own areas are not
      expect(privateHuge(dir, childOf(dir, pid)).map((v) => v.cow_huge)).toEqual([true, true]);
      expect(privateHuge(dir, pid).map((v) => v.cow_huge ?? false)).toEqual([false, false]);
    });
  });

  hugeIt('pre-dumped, then dumped with --track-mem: the huge pages are in the last dump whole (never left to the parent), verdict ok', () => {
    const w = startWorkload('hugetlb', []);
    const pids = treePids(w.pid);
    const base = tmp('hugetlb-predump');
    const p = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'p1'), '-o', 'pre-dump.log']);
    expect(p.code, p.stderr).toBe(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', path.join(base, 'd'), '--prev-images-dir', '../p1', '--track-mem', '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    for (const q of pids) expect(waitReaped(q)).toBe(true);
    // the private huge page (2 MiB less its last 4 KiB page, which holds zeros) in the last dump's own pages
    const vmas: any[] = critDecode(path.join(base, 'd', `mm-${w.pid}.img`)).entries[0].vmas;
    const priv = vmas.find((v) => v.flags & MAP_HUGETLB && v.status & VMA_ANON_PRIVATE);
    const entries: any[] = critDecode(path.join(base, 'd', `pagemap-${w.pid}.img`)).entries.slice(1);
    const inPriv = entries.filter((e) => e.vaddr >= priv.start && e.vaddr < priv.end);
    expect(inPriv.length).toBeGreaterThan(0);
    // (PE_PARENT is flag 1; old images say in_parent)
    for (const e of inPriv) expect([Number(e.flags ?? 0) & 1, e.in_parent ?? false]).toEqual([0, false]);
    const r = restoreDir(path.join(base, 'd'));
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
    const now = treePids(w.pid);
    killTree(w.pid);
    for (const q of now) expect(waitGone(q)).toBe(true);
  });

  describe.skipIf(!CRIU)(`between crtools and CRIU 4.2 (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
    for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
      hugeIt(`hugetlb with a SysV segment: dumped by ${by}, restored by ${to}, verdict check ok`, () => {
        const w = startWorkload('hugetlb', ['ipc']);
        const pids = treePids(w.pid);
        const dir = tmp(`x-hugetlb-${by}-img`);
        mkdirSync(dir, { recursive: true });
        runBy(by, dir, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
        for (const p of pids) expect(waitReaped(p)).toBe(true);
        // (the images are CRIU 4.2's either way)
        checkImages(dir, w.pid, true);
        runBy(to, dir, ['restore', '-D', dir, '-d', '-o', 'restore.log']);
        expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok');
        const now = treePids(w.pid);
        killTree(w.pid);
        for (const p of now) expect(waitGone(p)).toBe(true);
      });
    }
  });
});
