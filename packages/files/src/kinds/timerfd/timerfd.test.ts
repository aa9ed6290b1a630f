import { describe, expect, it } from 'vitest';
import { timerfdPlan } from './plan.js';

describe('timerfd', () => {
  it('keeps clock, expirations not read, time left and interval', () => {
    const p = timerfdPlan.plan({ clockid: 1, ticks: 3n, vsec: 2n, vnsec: 5, isec: 1n, insec: 0, flags: 0o4000 }, { id: 1, what: 'x', pid: 1, index: 0 });
    expect(p).toEqual({ kind: 'timerfd', flags: 0o4000, pos: 0n, timer: { clockId: 1, ticks: 3n, vsec: 2n, vnsec: 5n, isec: 1n, insec: 0n } });
  });
});
