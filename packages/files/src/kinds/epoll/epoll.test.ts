import { describe, expect, it } from 'vitest';
import { epollPlan } from './plan.js';

describe('epoll', () => {
  it('its targets are added by the task that named it first', () => {
    const p = epollPlan.plan({ flags: 2, tfd: [{ tfd: 4, events: 0x80000001, data: 9n }] }, { id: 1, what: 'x', pid: 42, index: 0 });
    expect(p).toEqual({ kind: 'epoll', flags: 2, pos: 0n, owner: 42, targets: [{ fd: 4, events: 0x80000001, data: 9n }] });
  });
});
