import { describe, expect, it } from 'vitest';
import { hugePageBytes, hugePagesNeeded } from '../src/plan/hugetlb.js';
import type { ShmemPlan, SysvPlan, TaskPlan, VmaPlan } from '../src/plan.js';

const MB2 = 2n << 20n;
const HUGETLB = 0x40000;
const B2M = 21 << 26;
const B1G = 30 << 26;
const area = (start: bigint, size: bigint, kind: VmaPlan['kind'], flags: number): VmaPlan => ({ start, end: start + size, pgoff: 0n, prot: 3, flags, kind });
const task = (vmas: VmaPlan[]) => ({ vmas }) as unknown as TaskPlan;

describe('huge pages a restore needs', () => {
  it('private areas (anonymous, of a memfd) by their size bits, shared objects by their size, SysV segments rounded up; shared areas not twice', () => {
    const tasks = [
      task([
        area(0x7f0000000000n, MB2, 'anon', 0x22 | HUGETLB | B2M),
        area(0x7f0000200000n, 2n * MB2, 'file-private', 0x02 | HUGETLB | B2M),
        area(0x7f0000600000n, MB2, 'file-shared', 0x01 | HUGETLB),
        area(0x7f0040000000n, 1n << 30n, 'anon', 0x22 | HUGETLB | B1G),
        area(0x7f0080000000n, MB2, 'anon', 0x22),
      ]),
    ];
    const shmem = [{ size: 2n * MB2, pages: [], hugetlb: B2M }, { size: 4096n, pages: [] }] as ShmemPlan[];
    const sysv = [{ kind: 'shm', id: 0, key: 1, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0, size: MB2 + 100n, hugetlb: 0 }] as SysvPlan[];
    // the segment without size bits: the machine's default size (2 MiB here)
    const need = hugePagesNeeded(tasks, shmem, sysv, () => MB2);
    expect([...need.entries()]).toEqual([[MB2, 1n + 2n + 2n + 2n], [1n << 30n, 1n]]);
  });

  it('sizes from the bits; a kernel without hugetlb has no default size', () => {
    expect(hugePageBytes(B2M)).toBe(MB2);
    expect(hugePageBytes(B1G)).toBe(1n << 30n);
    expect(hugePageBytes(0, () => 0n)).toBe(0n);
    expect(() => hugePagesNeeded([task([area(0n, MB2, 'anon', 0x22 | HUGETLB)])], [], [], () => 0n)).toThrow(/no huge pages \(hugetlb\)/);
  });
});
