import { mkdtempSync as mkdtemp, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeMessage, encodeImage, messageSpec } from '@crtools/images';
import { UnixPlans } from './plan.js';
import { unixView } from './view.js';

/** scratch directories, removed once the file's tests are done */
const made: string[] = [];
const mkdtempSync = (prefix: string): string => {
  const d = mkdtemp(prefix);
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

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

  it('an accepted end is accepted from the listener of its name; a waiting client and a datagram sender connect to their target', async () => {
    const k = new UnixPlans();
    const L = { ino: 1, peer: 0, type: 1, state: 10, backlog: 4, name: Buffer.from('/s\0'), flags: 2 };
    const S = { ino: 2, peer: 3, type: 1, state: 1, name: Buffer.from('/s\0'), flags: 2 };
    const C = { ino: 3, peer: 2, type: 1, state: 1, name: Buffer.alloc(0), flags: 2 };
    const W = { ino: 4, peer: 1, type: 1, state: 1, name: Buffer.alloc(0), flags: 2 };
    const R = { ino: 5, peer: 0, type: 2, state: 1, name: Buffer.from('\0r'), flags: 2 };
    const D = { ino: 6, peer: 5, type: 2, state: 1, name: Buffer.alloc(0), flags: 2 };
    const all = [L, S, C, W, R, D];
    await k.load('/nonexistent', new Map(all.map((u, i) => [i + 1, { usk: u }])));
    const files = all.map((u, i) => k.plan(u, { id: i + 1, what: `f${i}`, pid: 1, index: i }));
    k.finish(files);
    expect(files.map((f) => f.kind)).toEqual(['unix-bound', 'unix', 'unix', 'unix-bound', 'unix-bound', 'unix-bound']);
    expect(files[1].kind === 'unix' && [files[1].socket.peer, files[1].socket.listener]).toEqual([2, 0]);
    expect(files[2].kind === 'unix' && [files[2].socket.peer, files[2].socket.listener]).toEqual([1, undefined]);
    expect(files[3].kind === 'unix-bound' && files[3].unixBound.connect).toBe(0);
    expect(files[5].kind === 'unix-bound' && files[5].unixBound.connect).toBe(4);
  });

  it('an accepted end whose listener is not in the checkpoint (closed since) is a pair again, that end named after it; a relative name needs its directory', async () => {
    const k = new UnixPlans();
    const S = { ino: 2, peer: 3, type: 1, state: 1, name: Buffer.from('/s\0'), flags: 2 };
    const C = { ino: 3, peer: 2, type: 1, state: 1, name: Buffer.alloc(0), flags: 2 };
    await k.load('/nonexistent', new Map([[1, { usk: S }], [2, { usk: C }]]));
    const files: unknown[] = [k.plan(S, { id: 1, what: 'pid 1 fd 5', pid: 1, index: 0 }), k.plan(C, { id: 2, what: 'pid 1 fd 6', pid: 1, index: 1 })];
    k.finish(files);
    expect(files[0]).toMatchObject({ kind: 'unix', socket: { peer: 1, name: Buffer.from([1, 0, 0x2f, 0x73, 0]) } });
    expect(files[1]).toMatchObject({ kind: 'unix', socket: { peer: 0 } });
    expect((files[1] as { socket: { name?: Buffer } }).socket.name).toBeUndefined();
    const R = { ...S, ino: 4, peer: 5, name: Buffer.from('rel\0') };
    const k2 = new UnixPlans();
    await k2.load('/nonexistent', new Map([[1, { usk: R }], [2, { usk: { ...C, ino: 5, peer: 4 } }]]));
    expect(() => k2.plan(R, { id: 1, what: 'pid 1 fd 7', pid: 1, index: 0 })).toThrow(/pid 1 fd 7: .*relative name without the directory/);
    expect(k2.plan({ ...R, name_dir: '/tmp/d' }, { id: 1, what: 'pid 1 fd 7', pid: 1, index: 0 })).toMatchObject({ socket: { dir: '/tmp/d' } });
  });

  it('an unnamed datagram socket holding datagrams whose peer was closed: a socketpair whose other end sends them and goes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unix-dgclosed-'));
    writeFileSync(join(dir, 'sk-queues.img'), encodeImage({ magic: 'SK_QUEUES', entries: [{ id_for: 1, length: 4, extra: Buffer.from('left') }] }));
    const D = { ino: 2, peer: 0, type: 2, state: 1, name: Buffer.alloc(0), flags: 2 };
    const k = new UnixPlans();
    await k.load(dir, new Map([[1, { usk: D }]]));
    expect(k.plan(D, { id: 1, what: 'd', pid: 1, index: 3 })).toMatchObject({ kind: 'unix', socket: { peer: 3, queue: [{ data: Buffer.from('left') }] } });
  });

  it('queued messages: a datagram from a named sender is sent from it, one without from a socket of the moment; descriptors in flight become plan files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unix-queue-'));
    const R = { ino: 1, peer: 0, type: 2, state: 7, name: Buffer.from('/r\0'), flags: 2 };
    const A = { ino: 2, peer: 0, type: 2, state: 7, name: Buffer.from('\0a'), flags: 2 };
    const sockaddr = (name: Buffer) => Buffer.concat([Buffer.from([1, 0]), name]);
    writeFileSync(join(dir, 'sk-queues.img'), encodeImage({ magic: 'SK_QUEUES', entries: [
      { id_for: 1, length: 2, addr: sockaddr(A.name), extra: Buffer.from('m1') },
      { id_for: 1, length: 2, extra: Buffer.from('m2') },
      { id_for: 1, length: 2, addr: sockaddr(A.name), scm: [{ type: 1, rights: [7, 8] }], extra: Buffer.from('m3') },
    ] }));
    const k = new UnixPlans();
    await k.load(dir, new Map([[1, { usk: R }], [2, { usk: A }]]));
    const files: unknown[] = [k.plan(R, { id: 1, what: 'r', pid: 1, index: 0 }), k.plan(A, { id: 2, what: 'a', pid: 1, index: 1 })];
    expect(k.inflight().map((f) => f.id)).toEqual([7, 8]);
    files.push({ kind: 'pipe-r' }, { kind: 'reg' });
    k.finish(files, (id) => ({ 7: 2, 8: 3 })[id]);
    const r = files[0] as { unixBound: { queue: unknown[] } };
    expect(r.unixBound.queue).toEqual([{ data: Buffer.from('m1'), from: 1 }, { data: Buffer.from('m2') }, { data: Buffer.from('m3'), from: 1, fds: [2, 3] }]);
  });

  it('a peer outside the tree (EXTERN): an unnamed datagram socket connects to its name again with --ext-unix-sk only; a stream one needs --inherit-fd', async () => {
    const X = { ino: 9, peer: 0, type: 2, state: 10, uflags: 1, name: Buffer.from('/d\0'), flags: 0 };
    const D = { ino: 6, peer: 9, type: 2, state: 1, name: Buffer.alloc(0), flags: 2, opts: { so_sndbuf: 10, so_rcvbuf: 20 } };
    const S = { ino: 7, peer: 9, type: 1, state: 1, name: Buffer.alloc(0), flags: 2 };
    const k = new UnixPlans();
    await k.load('/nonexistent', new Map([[1, { usk: X }], [2, { usk: D }], [3, { usk: S }]]));
    expect(k.peerInCheckpoint(D)).toBe(false);
    expect(() => k.plan(D, { id: 2, what: 'pid 1 fd 3', pid: 1, index: 0 })).toThrow(/pid 1 fd 3: .*restored with --ext-unix-sk .* --inherit-fd 'fd\[N\]:socket:\[6\]'/);
    expect(() => k.plan(S, { id: 3, what: 'pid 1 fd 4', pid: 1, index: 0 })).toThrow(/pid 1 fd 4: .*restored only from a descriptor handed over, --inherit-fd 'fd\[N\]:socket:\[7\]'/);
    k.extUnixSk = true;
    const p = k.plan(D, { id: 2, what: 'pid 1 fd 3', pid: 1, index: 0 });
    expect(p).toMatchObject({ kind: 'socket', type: 2, socket: { family: 1, protocol: 0, connect: Buffer.from('\x01\x00/d\x00', 'latin1'), sndbuf: 10, rcvbuf: 20 } });
  });

  it("an RPC client's connection to the criu that dumped it (SERVICE): a socketpair end holding the DUMP answer restored: true, its other end gone", async () => {
    const V = { ino: 12, peer: 0, type: 5, state: 7, uflags: 2, name: Buffer.alloc(0), flags: 2, opts: { so_sndbuf: 10, so_rcvbuf: 20 } };
    const k = new UnixPlans();
    await k.load('/nonexistent', new Map([[1, { usk: V }]]));
    const p = k.plan(V, { id: 1, what: 'pid 1 fd 3', pid: 1, index: 4 });
    expect(p).toMatchObject({ kind: 'unix', type: 5, flags: 2, socket: { peer: 4, sndbuf: 10, rcvbuf: 20, shutdown: 0 } });
    const queue = p.kind === 'unix' ? p.socket.queue : [];
    expect(queue).toHaveLength(1);
    expect(decodeMessage(messageSpec('criu_resp'), queue[0]!.data)).toEqual({ type: 'DUMP', success: true, dump: { restored: true } });
    k.finish([p]);
    const W = { ...V, ino: 13, peer: 14 };
    await k.load('/nonexistent', new Map([[2, { usk: W }]]));
    expect(() => k.plan(W, { id: 2, what: 'pid 1 fd 5', pid: 1, index: 0 })).toThrow(/pid 1 fd 5: a unix socket marked as the connection to criu \(SERVICE\) has a peer socket:\[14\]/);
  });

  it('a descriptor in flight of a kind not sent again (a unix socket) is refused by name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unix-queue-'));
    const P = end(10, 11), Q = end(11, 10);
    writeFileSync(join(dir, 'sk-queues.img'), encodeImage({ magic: 'SK_QUEUES', entries: [{ id_for: 1, length: 1, scm: [{ type: 1, rights: [3] }], extra: Buffer.from('x') }] }));
    const k = new UnixPlans();
    await k.load(dir, new Map([[1, { usk: P }], [2, { usk: Q }]]));
    const files: unknown[] = [k.plan(P, { id: 1, what: 'pid 1 fd 4', pid: 1, index: 0 }), k.plan(Q, { id: 2, what: 'b', pid: 1, index: 1 }), { kind: 'unix' }];
    expect(() => k.finish(files, () => 2)).toThrow(/pid 1 fd 4: a descriptor in flight in its queue is a unix file, which is not sent again yet/);
  });
});
