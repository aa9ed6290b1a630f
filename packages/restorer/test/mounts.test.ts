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

describe('propagationOrder: parents first', () => {
  it('a mount moved (MS_MOVE) below one mounted after it goes after that parent, the rest as listed (zdtm tempfs_overmounted01)', () => {
    // a tmpfs at /d/a, its bind moved to /d/a/c below a bind of /d/a/b made over /d/a later
    const root = mnt(1, 0, '/', 10);
    const d = mnt(2, 1, '/d', 20);
    const a = mnt(3, 2, '/d/a', 21);
    const moved = mnt(4, 5, '/d/a/c', 21);
    const over = { ...mnt(5, 3, '/d/a', 21), root: '/b' };
    const other = mnt(6, 2, '/d/b', 22);
    expect(propagationOrder([root, d, a, moved, over, other]).map((m) => m.id)).toEqual([1, 2, 3, 5, 4, 6]);
    // the root mount's parent is outside the list: it goes first as listed
    expect(propagationOrder([root, d, other]).map((m) => m.id)).toEqual([1, 2, 6]);
  });
});
