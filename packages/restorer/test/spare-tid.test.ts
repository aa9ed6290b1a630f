import { describe, expect, it } from 'vitest';
import type { RestorePlan } from '../src/plan.js';
import { spareTid } from '../src/userns.js';

const USERNS = { uid: [{ first: 0, lowerFirst: 100000, count: 1000 }], gid: [{ first: 0, lowerFirst: 200000, count: 500 }] };

function plan(cloneFlags: number, userns = true): RestorePlan {
  return {
    namespaces: { cloneFlags, ...(userns ? { userns: USERNS } : {}) },
    tasks: [
      { pid: 1, threads: [{ tid: 1 }, { tid: 40 }], deadPids: [12] },
      { pid: 7, threads: [{ tid: 7 }] },
    ],
    helpers: [{ pid: 55, host: 0, setsid: true }, { pid: 0, host: 1, setsid: false }],
  } as unknown as RestorePlan;
}

describe('spareTid: the pids of the threads that take other ids for a step', () => {
  it('above every pid of the tree (tasks, threads, dead pids, helpers) in a user and a pid namespace of its own', () => {
    expect(spareTid(plan(0x10000000 | 0x20000000), 4194304)).toBe(56);
  });
  it('none without a pid namespace of the tree\'s own, without a user namespace, or past pid_max', () => {
    expect(spareTid(plan(0x10000000), 4194304)).toBe(0);
    expect(spareTid(plan(0x20000000, false), 4194304)).toBe(0);
    expect(spareTid(plan(0x20000000), 57)).toBe(0);
    expect(spareTid(plan(0x20000000), 59)).toBe(56);
  });
});
