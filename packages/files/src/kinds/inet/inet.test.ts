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

  it('crit x sk shows it as tcp LISTEN with its local address', () => {
    expect(inetView.socket!(listening)).toEqual({ kind: 'tcp', ino: 77, type: 'stream', state: 'LISTEN', local: '127.0.0.1:8080', peer: '*:0' });
  });
});
