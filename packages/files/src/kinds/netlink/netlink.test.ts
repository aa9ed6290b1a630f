import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { netlinkPlan } from './plan.js';

const ctx = { id: 1, what: 'pid 1 fd 3', pid: 1, index: 0 };
const route = { id: 1, ino: 9, protocol: 0, state: 7, flags: 2, portid: 2704, groups: [1 << 22, 2], dst_portid: 0, dst_group: 0, opts: { so_sndbuf: 212992, so_rcvbuf: 212992 } };

describe('netlink', () => {
  it('bound to its portid and first 32 groups; groups past 32 joined once bound; not connected', () => {
    const p = netlinkPlan.plan(route, ctx);
    expect(p.kind).toBe('socket');
    expect(p.type).toBe(3);
    expect(p.socket.family).toBe(16);
    expect([...p.socket.address!]).toEqual([16, 0, 0, 0, 0x90, 0x0a, 0, 0, 0, 0, 0x40, 0]);
    expect(p.socket.connect).toBeUndefined();
    const joins = p.socket.sockopts.filter((c) => c.level === 270);
    expect(joins.map((c) => [c.name, c.value.readUInt32LE(0), c.late])).toEqual([[1, 34, true]]);
  });

  it('connected: to the destination portid and group (as a mask); CRIU\'s unconnected state 7 and the kernel\'s 0 both taken', () => {
    const p = netlinkPlan.plan({ ...route, state: 1, dst_portid: 0, dst_group: 3 }, ctx);
    expect([...p.socket.connect!]).toEqual([16, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
    expect(netlinkPlan.plan({ ...route, state: 0 }, ctx).socket.connect).toBeUndefined();
  });

  it('groups without a portid, or another state, are refused with exit 4', () => {
    for (const bad of [{ ...route, portid: 0 }, { ...route, state: 2 }]) {
      let err: unknown;
      try {
        netlinkPlan.plan(bad, ctx);
      } catch (e) {
        err = e;
      }
      expect(isCrtoolsError(err) && err.exitCode).toBe(4);
    }
  });

  it("crtools' nl_sockopts: each option on is set to 1 before the socket is bound; an option it does not know is refused", () => {
    const p = netlinkPlan.plan({ ...route, nl_sockopts: (1 << 11) | (1 << 12) | (1 << 5) }, ctx);
    const on = p.socket.sockopts.filter((c) => c.level === 270 && !c.late);
    expect(on.map((c) => [c.name, c.value.readInt32LE(0)])).toEqual([[5, 1], [11, 1], [12, 1]]);
    expect(netlinkPlan.plan(route, ctx).socket.sockopts.filter((c) => c.level === 270 && !c.late)).toEqual([]);
    expect(() => netlinkPlan.plan({ ...route, nl_sockopts: 1 << 20 }, ctx)).toThrow(/options 0x100000 restore does not know/);
  });
});
