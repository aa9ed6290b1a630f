/** How the dump reads a task's areas (procfs readVmaList), from what kerndat knows of this kernel. */
import { decodeDev } from '@crtools/images/facts';
import type { Kerndat } from '@crtools/kerndat';
import type { CodeArea } from '@crtools/parasite';
import { PROT, VMA, type HugetlbDev, type MapsOptions, type Vma } from '@crtools/procfs';

/** kerndat's hugetlb_dev labels → log2 of the page size (mmap's MAP_HUGE_* size bits are it << 26) */
const HUGE_SHIFT: Record<string, number> = { '2M': 21, '1G': 30 };

/** The devices of the kernel's hugetlbfs mounts, each with its size bits (kerndat hugetlb_dev). */
export function hugetlbDevs(kd: Kerndat): HugetlbDev[] {
  return Object.entries(kd.hugetlb_dev ?? {}).flatMap(([label, dev]) => {
    const shift = HUGE_SHIFT[label];
    return shift === undefined ? [] : [{ ...decodeDev(dev), sizeFlag: shift << 26 }];
  });
}

/** readVmaList options: the hidden stack guard gap, the devices of shared anonymous memory and of huge pages. */
export function mapsOptions(kd: Kerndat): Pick<MapsOptions, 'stackGuardGapHidden' | 'shmemDev' | 'hugetlbDevs'> {
  const o: Pick<MapsOptions, 'stackGuardGapHidden' | 'shmemDev' | 'hugetlbDevs'> = { stackGuardGapHidden: !!kd.stack_guard_gap_hidden, hugetlbDevs: hugetlbDevs(kd) };
  if (typeof kd.shmem_dev === 'number') o.shmemDev = decodeDev(kd.shmem_dev);
  return o;
}

/**
 * Where the parasite's bootstrap finds a `syscall` instruction (withInfection's codeAreas): the
 * readable executable areas of a VMA list just read from the stopped task, the vDSO marked (the
 * vsyscall page left out), so that /proc/PID/maps is not read again.
 */
export function codeAreasOf(vmas: readonly Pick<Vma, 'start' | 'end' | 'prot' | 'status'>[]): CodeArea[] {
  const rx = PROT.READ | PROT.EXEC;
  return vmas.filter((v) => (v.prot & rx) === rx && !(v.status & VMA.AREA_VSYSCALL)).map((v) => ({ start: v.start, end: v.end, vdso: (v.status & VMA.AREA_VDSO) !== 0 }));
}
