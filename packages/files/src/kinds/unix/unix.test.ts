import { describe, expect, it } from 'vitest';
import { UnixPlans } from './plan.js';
import { unixView } from './view.js';

const end = (ino: number, peer: number) => ({ ino, peer, type: 1, state: 1, flags: 2, opts: { so_sndbuf: 10, so_rcvbuf: 20 } });

describe('unix', () => {
  it('socketpair ends are joined to each other once every file is planned', () => {
    const k = new UnixPlans();
    const files = [k.plan(end(10, 11), { id: 1, what: 'a', pid: 1, index: 0 }), k.plan(end(11, 10), { id: 2, what: 'b', pid: 1, index: 1 })];
    k.finish(files);
    expect(files.map((f) => (f.kind === 'unix' ? f.socket.peer : undefined))).toEqual([1, 0]);
  });

  it('an end whose peer is not in the checkpoint is a bad image', () => {
    const k = new UnixPlans();
    const files = [k.plan(end(10, 99), { id: 1, what: 'pid 1 fd 4', pid: 1, index: 0 })];
    expect(() => k.finish(files)).toThrow(/pid 1 fd 4: the unix socket's peer socket:\[99\] is not in the checkpoint/);
  });

  it('a listening socket bound to a path becomes a sockaddr_un with a terminating NUL', () => {
    const p = new UnixPlans().plan({ ino: 5, peer: 0, type: 1, state: 10, backlog: 3, name: Buffer.from('/tmp/s'), flags: 2 }, { id: 1, what: 'x', pid: 1, index: 0 });
    expect(p.kind).toBe('unix-bound');
    if (p.kind === 'unix-bound') expect(p.unixBound.address).toEqual(Buffer.from('\x01\x00/tmp/s\x00', 'latin1'));
  });

  it('crit names it unix[ino (peer) name]', () => {
    expect(unixView.name!({ ino: 5, peer: 6, name: 'x' })).toBe('unix[5 (6) x]');
    expect(unixView.socket!({ ino: 5, peer: 6, type: 1, state: 1 })).toMatchObject({ kind: 'unix', type: 'stream', state: 'ESTABLISHED', peer: 'ino 6' });
  });
});
