/**
 * Huge pages a restore needs, checked against what this machine has free before any task is
 * made: a checkpoint holding memory on huge pages (private and shared MAP_HUGETLB areas, hugetlb
 * memfds, SysV segments made with SHM_HUGETLB) is refused by name when the machine offers no
 * huge pages of that size, or fewer free ones than the restore would take.
 */
import { existsSync, readFileSync } from 'node:fs';
import { refuse as unsupported } from '@crtools/files/plan';
import { MAP } from '@crtools/procfs';
import type { ShmemPlan, SysvPlan, TaskPlan } from '../plan.js';

const HUGE_SHIFT = 26;
const HUGE_MASK = 0x3f;

/** Where the kernel tells, per huge page size, how many pages exist, are free and are promised. */
const HUGEPAGES_DIR = '/sys/kernel/mm/hugepages';

/** The size in bytes of huge pages given as size bits (0: the machine's default size; 0n when it has no hugetlb). */
export function hugePageBytes(bits: number, defaultBytes: () => bigint = defaultHugePage): bigint {
  const log2 = (bits >>> HUGE_SHIFT) & HUGE_MASK;
  return log2 ? 1n << BigInt(log2) : defaultBytes();
}

/** The machine's default huge page size (/proc/meminfo Hugepagesize), 0 when it has no hugetlb. */
function defaultHugePage(): bigint {
  const m = /^Hugepagesize:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? BigInt(m[1]!) * 1024n : 0n;
}

/** "2 MiB", "1 GiB" */
function sizeText(bytes: bigint): string {
  return bytes >= 1n << 30n ? `${bytes >> 30n} GiB` : bytes >= 1n << 20n ? `${bytes >> 20n} MiB` : `${bytes >> 10n} KiB`;
}

/** How many huge pages of each size (bytes → pages) the restore of these tasks and objects takes. */
export function hugePagesNeeded(tasks: readonly TaskPlan[], shmem: readonly ShmemPlan[], sysv: readonly SysvPlan[] = [], defaultBytes: () => bigint = defaultHugePage): Map<bigint, bigint> {
  const need = new Map<bigint, bigint>();
  const add = (bits: number, bytes: bigint) => {
    const size = hugePageBytes(bits, defaultBytes);
    if (size <= 0n) throw unsupported('restore: the checkpoint holds memory on huge pages, and this machine\'s kernel has no huge pages (hugetlb)');
    need.set(size, (need.get(size) ?? 0n) + (bytes + size - 1n) / size);
  };
  // a private MAP_HUGETLB mapping takes its pages when it is made; a shared one those of its object
  for (const t of tasks) for (const v of t.vmas) if (v.flags & MAP.HUGETLB && (v.kind === 'anon' || v.kind === 'file-private')) add(v.flags, v.end - v.start);
  for (const o of shmem) if (o.hugetlb !== undefined) add(o.hugetlb, o.size);
  for (const o of sysv) if (o.kind === 'shm' && o.hugetlb !== undefined) add(o.hugetlb, o.size ?? 0n);
  return need;
}

/** What this machine has of huge pages of `bytes`: undefined when it offers no such size. */
function available(bytes: bigint): { free: bigint; reserved: bigint } | undefined {
  const dir = `${HUGEPAGES_DIR}/hugepages-${bytes / 1024n}kB`;
  if (!existsSync(dir)) return undefined;
  const read = (f: string) => BigInt(readFileSync(`${dir}/${f}`, 'utf8').trim());
  return { free: read('free_hugepages'), reserved: read('resv_hugepages') };
}

/** Refuse by name a restore whose huge pages this machine cannot give (see the file's comment). */
export function checkHugePages(tasks: readonly TaskPlan[], shmem: readonly ShmemPlan[], sysv?: readonly SysvPlan[]): void {
  const need = hugePagesNeeded(tasks, shmem, sysv);
  for (const [bytes, pages] of need) {
    const have = available(bytes);
    const size = sizeText(bytes);
    if (!have) throw unsupported(`restore: the checkpoint holds memory on ${size} huge pages, which this machine does not offer (no ${HUGEPAGES_DIR}/hugepages-${bytes / 1024n}kB)`);
    const free = have.free - have.reserved;
    if (free < pages) {
      throw unsupported(`restore: the checkpoint needs ${pages} free huge pages of ${size}, this machine has ${free < 0n ? 0n : free} (${HUGEPAGES_DIR}/hugepages-${bytes / 1024n}kB/nr_hugepages, vm.nr_hugepages)`);
    }
  }
}
