import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { inetPlan } from './plan.js';
import { inetView } from './view.js';

const ctx = { id: 1, what: 'pid 1 fd 3', pid: 1, index: 0 };
const listening = { ino: 77, family: 2, type: 1, proto: 6, state: 10, src_port: 8080, src_addr: [0x0100007f], backlog: 5, flags: 2, opts: { reuseaddr: true, so_sndbuf: 1000, so_rcvbuf: 2000 } };

describe('inet', () => {
  it('a listening TCP socket is planned bound to its address with its backlog and options', () => {
    const p = inetPlan.plan(listening, ctx);
    expect(p.inet.listen).toBe(true);
    expect(p.inet.backlog).toBe(5);
    expect(p.inet.reuseaddr).toBe(true);
    expect([...p.inet.address!.subarray(0, 8)]).toEqual([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
    expect(inetPlan.inheritKey!(listening)).toBe('socket:[77]');
  });

  it('a connected TCP socket is refused with exit 4, naming the descriptor', () => {
    let err: unknown;
    try {
      inetPlan.plan({ ...listening, state: 1 }, ctx);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(4);
    expect(String((err as Error).message)).toContain('pid 1 fd 3: TCP socket in state 1');
  });

  it('a connected UDP socket is bound, then connected to its peer', () => {
    const p = inetPlan.plan({ ...listening, type: 2, proto: 17, state: 1, dst_port: 9000, dst_addr: [0x0100007f], backlog: 0 }, ctx);
    expect(p.inet.listen).toBe(false);
    expect([...p.inet.connect!.subarray(0, 8)]).toEqual([2, 0, 0x23, 0x28, 127, 0, 0, 1]);
  });

  it('a raw socket: bound only to an address (its port is its protocol), ip_opts as setsockopt calls', () => {
    const raw = { ...listening, type: 3, proto: 1, state: 7, src_port: 1, src_addr: [0], backlog: 0, ip_opts: { tos: 16, ttl: 33, raw: { icmpv_filter: [0xffffffff], hdrincl: true } } };
    const p = inetPlan.plan(raw, ctx);
    expect(p.inet.address).toBeUndefined();
    expect(p.inet.sockopts.slice(0, 4).map((c) => [c.level, c.name, c.value.readUInt32LE(0)])).toEqual([[255, 1, 0xffffffff], [0, 3, 1], [0, 1, 16], [0, 2, 33]]);
    expect(inetPlan.plan({ ...raw, src_addr: [0x0500007f] }, ctx).inet.address).toBeDefined();
  });

  it('a ping socket that was shut down is refused with exit 4 (a UDP one is shut down again)', () => {
    expect(inetPlan.plan({ ...listening, type: 2, proto: 17, state: 1, shutdown: 'READ' }, ctx).inet.shutdown).toBe(1);
    let err: unknown;
    try {
      inetPlan.plan({ ...listening, type: 2, proto: 1, state: 1, shutdown: 1 }, ctx);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(4);
  });

  it('crit x sk shows it as tcp LISTEN with its local address', () => {
    expect(inetView.socket!(listening)).toEqual({ kind: 'tcp', ino: 77, type: 'stream', state: 'LISTEN', local: '127.0.0.1:8080', peer: '*:0' });
  });
});
