import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { InetPlans, type InetFilePlan, type TcpFilePlan } from './plan.js';
import { inetView } from './view.js';
import { networkLockFromImage, networkLockImageValue, parseNetworkLock } from './netlock.js';

const ctx = { id: 1, what: 'pid 1 fd 3', pid: 1, index: 0 };
const listening = { ino: 77, family: 2, type: 1, proto: 6, state: 10, src_port: 8080, src_addr: [0x0100007f], backlog: 5, flags: 2, opts: { reuseaddr: true, so_sndbuf: 1000, so_rcvbuf: 2000 } };
const established = { ...listening, ino: 78, state: 1, src_port: 40000, dst_port: 8080, dst_addr: [0x0100007f], backlog: 0, tcp_opts: { nodelay: true } };

describe('inet', () => {
  const inetPlan = new InetPlans();
  /** the plan of a socket that is not a TCP connection */
  const inet = (k: Record<string, unknown>): InetFilePlan => inetPlan.plan(k, ctx) as InetFilePlan;

  it('IP_FREEBIND: a socket that has it is planned to keep it after its bind (which is made with it on), one without to lose it', () => {
    const udp6 = { ino: 90, family: 10, type: 2, proto: 17, state: 7, src_port: 5000, src_addr: [0xb80d0120, 0, 0, 0x42000000], flags: 2, opts: {} };
    expect(inet({ ...udp6, ip_opts: { freebind: true } }).inet.freebind).toBe(true);
    expect(inet({ ...udp6, ip_opts: {} }).inet.freebind).toBe(false);
  });

  it('a listening TCP socket is planned bound to its address with its backlog and options', () => {
    const p = inetPlan.plan(listening, ctx);
    if (p.kind !== 'inet') throw new Error('not inet');
    expect(p.inet.listen).toBe(true);
    expect(p.inet.backlog).toBe(5);
    expect(p.inet.reuseaddr).toBe(true);
    expect([...p.inet.address!.subarray(0, 8)]).toEqual([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
    expect(inetPlan.inheritKey(listening)).toBe('socket:[77]');
  });

  it('an established TCP socket is planned as a connection between its two ends, TCP_NODELAY among its options', () => {
    const p = inetPlan.plan(established, ctx) as TcpFilePlan;
    expect(p.kind).toBe('tcp');
    expect([...p.tcp.src.subarray(0, 8)]).toEqual([2, 0, 0x9c, 0x40, 127, 0, 0, 1]);
    expect([...p.tcp.dst.subarray(0, 8)]).toEqual([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
    expect(p.tcp.conn).toEqual({ family: 2, src: [0x0100007f], sport: 40000, dst: [0x0100007f], dport: 8080 });
    expect(p.tcp.sockopts.some((c) => c.level === 6 && c.name === 1 && c.value.readInt32LE(0) === 1)).toBe(true);
    // no tcp-stream image loaded: dumped with --tcp-close
    expect(p.tcp.stream).toBeUndefined();
    expect(p.closed.inet.address).toBeUndefined();
    // what --tcp-close makes is shut down both ways, as CRIU 4.2 makes it (EOF, POLLHUP, EPIPE)
    expect(p.closed.inet.shutdown).toBe(3);
    // its ip_opts come back too, before its tcp_opts
    const withTos = inetPlan.plan({ ...established, ip_opts: { tos: 16 } }, ctx) as TcpFilePlan;
    expect(withTos.tcp.sockopts.map((c) => [c.level, c.name])).toContainEqual([0, 1]);
    expect(withTos.tcp.sockopts.at(-1)).toMatchObject({ level: 6, name: 1 });
  });

  it('a TCP socket in a state not carried is refused with exit 4, naming the descriptor and the state', () => {
    let err: unknown;
    try {
      inetPlan.plan({ ...established, state: 3 }, ctx);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(4);
    expect(String((err as Error).message)).toContain('pid 1 fd 3: TCP socket in state SYN_RECV');
  });

  it('a connecting TCP socket (SYN_SENT, as CRIU 4.2 writes it) is planned as a connection, to be connected again', () => {
    const p = inetPlan.plan({ ...established, state: 2 }, ctx) as TcpFilePlan;
    expect(p.kind).toBe('tcp');
    expect(p.tcp.state).toBe(2);
    expect([...p.tcp.dst.subarray(0, 8)]).toEqual([2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
  });

  it('a half-closed connection is planned as a connection with its state and how it was shut down', () => {
    const p = inetPlan.plan({ ...established, state: 9, shutdown: 'BOTH' }, ctx) as TcpFilePlan;
    expect(p.kind).toBe('tcp');
    expect(p.tcp).toMatchObject({ state: 9, shutdown: 3 });
    // a listener shut down is still refused
    expect(() => inetPlan.plan({ ...listening, shutdown: 'READ' }, ctx)).toThrow(/TCP socket shut down/);
  });

  it('a TCP connection that ended (CLOSE with its peer, as CRIU 4.2 writes it) is a new socket bound to its address, shut for reading', () => {
    const p = inetPlan.plan({ ...established, state: 7, shutdown: 'READ' }, ctx) as TcpFilePlan;
    expect(p.kind).toBe('tcp');
    expect(p.tcp.state).toBe(7);
    // what the restore makes in its place: bound, not connected, not listening, its tcp_opts kept
    expect([...p.closed.inet.address!.subarray(0, 8)]).toEqual([2, 0, 0x9c, 0x40, 127, 0, 0, 1]);
    expect(p.closed.inet).toMatchObject({ connect: undefined, listen: false, shutdown: 1, forceBind: true });
    expect(p.closed.inet.sockopts.some((c) => c.level === 6 && c.name === 1 && c.value.readInt32LE(0) === 1)).toBe(true);
  });

  it('a TCP socket never connected (as crtools and CRIU write it): bound or not, shut for reading, its tcp_opts set', () => {
    const bound = inet({ ...established, state: 7, dst_port: 0, dst_addr: [0], shutdown: 'READ' });
    expect(bound.inet).toMatchObject({ connect: undefined, listen: false, shutdown: 1 });
    expect(bound.inet.address).toBeDefined();
    // bound in repair mode (its address may be a listener's: an accepted end whose connection ended)
    expect(bound.inet.forceBind).toBe(true);
    expect(inet(listening).inet.forceBind).toBeUndefined();
    expect(bound.inet.sockopts.some((c) => c.level === 6 && c.name === 1)).toBe(true);
    expect(inet({ ...established, state: 7, src_port: 0, src_addr: [0], dst_port: 0, dst_addr: [0] }).inet.address).toBeUndefined();
  });

  it('a connected UDP socket is bound, then connected to its peer', () => {
    const p = inet({ ...listening, type: 2, proto: 17, state: 1, dst_port: 9000, dst_addr: [0x0100007f], backlog: 0 });
    expect(p.inet.listen).toBe(false);
    expect([...p.inet.connect!.subarray(0, 8)]).toEqual([2, 0, 0x23, 0x28, 127, 0, 0, 1]);
  });

  it('a raw socket: bound only to an address (its port is its protocol), ip_opts as setsockopt calls', () => {
    const raw = { ...listening, type: 3, proto: 1, state: 7, src_port: 1, src_addr: [0], backlog: 0, ip_opts: { tos: 16, ttl: 33, raw: { icmpv_filter: [0xffffffff], hdrincl: true } } };
    const p = inet(raw);
    expect(p.inet.address).toBeUndefined();
    expect(p.inet.sockopts.slice(0, 4).map((c) => [c.level, c.name, c.value.readUInt32LE(0)])).toEqual([[255, 1, 0xffffffff], [0, 3, 1], [0, 1, 16], [0, 2, 33]]);
    expect(inet({ ...raw, src_addr: [0x0500007f] }).inet.address).toBeDefined();
  });

  it('a ping socket that was shut down is refused with exit 4 (a UDP one is shut down again)', () => {
    expect(inet({ ...listening, type: 2, proto: 17, state: 1, shutdown: 'READ' }).inet.shutdown).toBe(1);
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

  it('network lock methods: CRIU\'s inventory values and option spellings', () => {
    expect(['iptables', 'nftables', 'skip'].map((m) => networkLockImageValue(parseNetworkLock(m.toUpperCase())))).toEqual([0, 1, 2]);
    expect(networkLockFromImage(undefined)).toBe('iptables');
    expect(networkLockFromImage(1)).toBe('nftables');
    expect(() => parseNetworkLock('pf')).toThrow(/--network-lock: pf/);
  });
});
