/**
 * Socket states a restore once changed silently or a dump refused (found by CRIU's zdtm), in the
 * workload skstates, round-tripped twice under the fingerprint, the workload checking each
 * itself: a datagram socketpair end whose other end was closed keeps what waited in its queue
 * (a descriptor in flight with it too); a
 * bound unix stream socket never connected; a listener bound to a relative name is bound again
 * in its directory (a connection to the name reaches it); a UDP socket never bound, with its
 * options; IPv6 sockets bound with IP_FREEBIND (kept, or cleared since); two listeners sharing a
 * port through SO_REUSEPORT, one of which cleared it since; a datagram socket bound and connected
 * to itself with a datagram from itself queued; the accepted end of a unix connection whose
 * listener was closed, named after it. And --tcp-close: connections come
 * back shut down both ways, as CRIU makes them (EOF, POLLHUP, EPIPE).
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { freePorts } from './tcp-helpers.js';
import { askVerdict, criu, critDecode, haveCrit, killAllStarted, killTree, ourCritDecode, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

type Isk = { family: unknown; type: unknown; proto: unknown; state: unknown; src_port: number; ip_opts?: { freebind?: boolean; tos?: number; ttl?: number }; opts?: { so_reuseport?: boolean; so_broadcast?: boolean } };
type Usk = { name?: string; name_dir?: string; state: unknown; type: unknown };

describe('socket states (zdtm regressions)', () => {
  it('skstates: closed dgram peer with a queue (a descriptor in flight too), unconnected bound stream, relative name, unbound UDP with options, IP_FREEBIND kept/cleared, SO_REUSEPORT cleared after bind, dgram connected to itself, accepted end of a closed listener; round-tripped twice', () => {
    const dir = tmp('skstates');
    roundTrip('skstates', [dir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (images) => {
      const decode = haveCrit ? critDecode : ourCritDecode;
      const files = (decode(path.join(images, 'files.img')).entries as { isk?: Isk; usk?: Usk }[]);
      const isk = files.flatMap((f) => (f.isk ? [f.isk] : []));
      const usk = files.flatMap((f) => (f.usk ? [f.usk] : []));
      // the relative names (the listener, the socket connected to itself, the accepted end), with the directory they were bound in
      const rel = usk.filter((u) => u.name_dir !== undefined);
      expect(rel).toHaveLength(3);
      for (const u of rel) expect(u.name_dir).toBe(dir);
      // the UDP socket never bound: in CLOSE, no port, its options kept
      const v4udp = isk.filter((k) => (k.family === 2 || k.family === 'INET') && (k.type === 2 || k.type === 'DGRAM'));
      expect(v4udp).toHaveLength(1);
      expect(v4udp[0]!.src_port).toBe(0);
      // (ip_opts' tos and ttl are newer than Debian's crit 3.17: read with ours)
      const ours = (ourCritDecode(path.join(images, 'files.img')).entries as { isk?: Isk }[]).flatMap((f) => (f.isk && f.isk.type === 2 && f.isk.family === 2 ? [f.isk] : []));
      expect(ours[0]!.ip_opts).toMatchObject({ tos: 0x10, ttl: 7 });
      expect(v4udp[0]!.opts?.so_broadcast).toBe(true);
      // IPv6: one kept IP_FREEBIND (set through SOL_IP), the other cleared it after its bind
      const v6 = isk.filter((k) => k.family === 10 || k.family === 'INET6');
      expect(v6.map((k) => !!k.ip_opts?.freebind).sort()).toEqual([false, true]);
      // the listeners: one with SO_REUSEPORT, one without
      const tcp = isk.filter((k) => k.proto === 6 || k.proto === 'TCP');
      expect(tcp.map((k) => !!k.opts?.so_reuseport).sort()).toEqual([false, true]);
    });
  });

  it('--tcp-close (dump and restore): the connections come back shut down both ways, as CRIU makes them: TCP_INFO CLOSE, a read says EOF, POLLHUP, a write EPIPE', () => {
    const [port] = freePorts(1) as [number];
    const dir = tmp('skstates-tcpclose');
    const w = startWorkload('skstates', [dir, 'tcpclose', String(port)]);
    // established: not what --tcp-close makes
    expect(askVerdict(w.state, w.pid)).toBe('check bad what=accepted,client');
    const images = tmp('skstates-tcpclose-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', images, '--tcp-close']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restoreDir(images, ['--tcp-close']);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
    killTree(w.pid);
  });
});
