import { describe, expect, it } from 'vitest';
import { propagationOrder } from '../src/mounts.js';
import type { MountPlan } from '../src/plan.js';

const mnt = (id: number, parent: number, mountpoint: string, dev: number, shared = 0, master = 0): MountPlan =>
  ({ id, parent, fstype: 5, dev, root: '/', mountpoint, source: 'x', options: '', flags: 0, sbFlags: 0, shared, master });

describe('propagationOrder', () => {
  it('a copy the kernel made below a slave, listed before its twin below the master, goes right after the twin (zdtm mntns_overmount)', () => {
    // sysfs at /1 shared (group 2), its bind at /2 a slave of it; a tmpfs over /1 copied over /2
    const root = mnt(1, 0, '/', 10);
    const copy = mnt(175, 173, '/2', 60, 0, 3);
    const over = mnt(174, 172, '/1', 60, 3);
    const bind = mnt(173, 1, '/2', 59, 0, 2);
    const sysfs = mnt(172, 1, '/1', 59, 2);
    expect(propagationOrder([root, sysfs, bind, copy, over]).map((m) => m.id)).toEqual([1, 172, 173, 174, 175]);
    // already after its twin, or without one: left where it is
    expect(propagationOrder([root, sysfs, bind, over, copy]).map((m) => m.id)).toEqual([1, 172, 173, 174, 175]);
    expect(propagationOrder([root, sysfs, bind, { ...copy, dev: 61 }, over]).map((m) => m.id)).toEqual([1, 172, 173, 175, 174]);
  });
});
