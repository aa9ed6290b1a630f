/**
 * Issue 15: TCP sockets with no connection going on (tcpended). Connections that ended while
 * their task held them (CLOSE after both FINs: the end that closed first, the accepted end that
 * closed second, an IPv6 one) and sockets never connected (bound, or with the receiving side
 * shut) come back as new sockets at the same addresses, a read saying EOF where it did;
 * round-tripped twice under the fingerprint, an ended connection with its peer and stream as CRIU
 * 4.2 writes it (made again in repair mode and brought to CLOSE by its FINs: its peer's address
 * kept), the others as CRIU 4.2 writes a plain socket (Debian's crit decodes them), and both ways
 * with CRIU 4.2 (its network lock on ended connections lifted by our restore). Connects under way
 * (SYN_SENT) are tcp-synsent.test.ts's.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import { CRIU, TCP_MOVING, cleanupTcp, haveIptables } from './tcp-helpers.js';
import { alive, askVerdict, critDecode, criu, haveCrit, killAllStarted, killTree, killTreeAndWait, readState, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});

const LISTEN = 10;
const CLOSE = 7;

/** the TCP sockets (proto 6) of files.img as Debian's crit decodes them: state, ports, shutdown */
function tcpEntries(dir: string): { state: number; src: number; dst: number; shutdown?: string }[] {
  const files = critDecode(path.join(dir, 'files.img')).entries as any[];
  return files.filter((f) => f.isk && Number(f.isk.proto) === 6).map((f) => ({
    state: Number(f.isk.state), src: Number(f.isk.src_port), dst: Number(f.isk.dst_port), ...(f.isk.shutdown ? { shutdown: String(f.isk.shutdown) } : {}),
  }));
}

describe('TCP sockets whose connection ended, or never connected', () => {
  it('tcpended: ended connections (both ends, IPv4 and IPv6: made again from their stream and brought to CLOSE, peers kept), a bound socket, one shut for reading: at the same addresses, EOF where it was, twice', () => {
    roundTrip('tcpended', ['ended'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, TCP_MOVING, (dir) => {
      if (!haveCrit) return;
      const tcp = tcpEntries(dir);
      // two listeners; three ended ends with their peer (and a stream, as CRIU 4.2 writes them),
      // the bound and the unbound socket: CLOSE, no peer, as CRIU writes a plain socket
      expect(tcp.filter((t) => t.state === LISTEN)).toHaveLength(2);
      const closed = tcp.filter((t) => t.state === CLOSE);
      expect(closed).toHaveLength(5);
      expect(closed.filter((t) => t.dst !== 0)).toHaveLength(3);
      expect(readdirSync(dir).filter((f) => f.startsWith('tcp-stream-'))).toHaveLength(3);
      // the receiving side shut where it was: the ended ends and u, not the bound one
      expect(closed.filter((t) => t.shutdown === 'READ')).toHaveLength(4);
      expect(closed.filter((t) => t.src === 0)).toHaveLength(1);
    });
  });

  it('refused by name: a socket whose connect failed (the segment size of a connection, no field keeps it); the tree goes on', () => {
    const w = startWorkload('tcpended', ['refused']);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('tcpended-refused')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`task ${w.pid} fd 3 \\(socket:\\[\\d+\\]\\): TCP socket 0\\.0\\.0\\.0:\\d+ \\(CLOSE\\) is a socket whose connect failed`));
    expect(alive(w.pid)).toBe(true);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });
});

describe.skipIf(!CRIU || !haveIptables)(`tcpended between crtools and CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary here'})`, () => {
  it('dumped by CRIU (ended connections with their peer and stream, locked), restored by us: new sockets, verdict ok, lock lifted', () => {
    const w = startWorkload('tcpended', ['ended']);
    const dir = tmp('tcpended-criu');
    const d = spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log'], { encoding: 'utf8', timeout: 60_000 });
    expect(d.status, readState(path.join(dir, 'dump.log')).split('\n').slice(-5).join('\n')).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    if (haveCrit) expect(tcpEntries(dir).filter((t) => t.state === CLOSE && t.dst !== 0)).toHaveLength(3);
    // CRIU's dump left its lock on the three ended connections (rules naming their ports)
    const ports = tcpEntries(dir).filter((t) => t.state === CLOSE && t.dst !== 0).map((t) => t.src);
    const locks = (): string[] => (spawnSync('iptables', ['-w', '-S'], { encoding: 'utf8' }).stdout ?? '').split('\n')
      .filter((l) => l.includes('0xc114') && ports.some((p) => l.includes(`--sport ${p} `) || l.includes(`--dport ${p} `)));
    if (haveCrit) expect(locks().length).toBeGreaterThan(0);
    const r = criu(['restore', '-D', dir, '-d']);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok');
    if (haveCrit) expect(locks()).toEqual([]);
    killTreeAndWait(w.pid);
  });

  // CRIU 4.2 binds a TCP socket with no connection without repair mode: the accepted end of a
  // connection that ended, beside its listener, and the end that closed first, while the
  // connection's TIME_WAIT holds its address, fail there (EADDRINUSE; crtools binds them in
  // repair mode). So the tree whose listeners are gone and whose ends in CLOSE closed second
  it('dumped by us (the listeners closed), restored by CRIU: verdict ok', () => {
    const w = startWorkload('tcpended', ['alone']);
    const dir = tmp('tcpended-ours');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    // (CRIU restores a socket with a peer in its image only with --tcp-established, an ended one too)
    const r = spawnSync(CRIU!, ['restore', '-D', dir, '-d', '-o', 'restore.log', '--tcp-established'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, readState(path.join(dir, 'restore.log')).split('\n').slice(-5).join('\n')).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok');
    killTreeAndWait(w.pid);
  });
});
