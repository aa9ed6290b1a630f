/**
 * Half-closed TCP connections (--tcp-established): FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK
 * and CLOSING, each with a peer inside the tree (IPv4 and IPv6) and with a peer outside it
 * (tcpstates). After each restore the workload and its peer look at every end without moving
 * it (its state; EOF readable exactly where the other end sent its FIN); after the second,
 * every connection is finished: the open directions carry more data, every end reads all of
 * it to EOF, byte for byte, no reset, and the outside peer's counts match the tree's. CRIU 4.2
 * both ways.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { CRIU, TCP_MOVING, bothVerdicts, cleanupTcp, criuDumpTcp, freePorts, haveIptables, lockRules, ourDumpCriuRestoreTcp, startPeerOf } from './tcp-helpers.js';
import { askVerdict, criu, critDecode, haveCrit, killAllStarted, killTree, readState, sleep, startWorkload, tmp } from '../dump/helpers.js';

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});

/** The states of the tree's 17 ends (tcpstates): 12 of pairs inside, 5 to the outside peer. */
const STATES: Record<string, number> = { ESTABLISHED: 1, FIN_WAIT1: 2, FIN_WAIT2: 6, CLOSE_WAIT: 3, LAST_ACK: 3, CLOSING: 2 };
const STATE_NUM: Record<string, number> = { ESTABLISHED: 1, FIN_WAIT1: 4, FIN_WAIT2: 5, CLOSE_WAIT: 8, LAST_ACK: 9, CLOSING: 11 };

/** The network lock's rules (CRIU's mark) in task pid's network namespace. */
function netnsLockRules(pid: number): string[] {
  const out: string[] = [];
  for (const tool of ['iptables', 'ip6tables']) {
    const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, tool, '-w', '30', '-S'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    out.push(...r.stdout.split('\n').filter((l) => /0xc114/i.test(l)));
  }
  return out;
}

/** Start tcpstates' peer outside the tree (it says ready once the tree has connected and both played their parts). */
function startPeer(port: number, sync: string): { pid: number; state: string } {
  return startPeerOf('tcpstates', ['peer', String(port), sync]);
}

function startTree(): { w: ReturnType<typeof startWorkload>; peer: { pid: number; state: string } } {
  const [port, pp] = freePorts(2) as [number, number];
  const sync = path.join(tmp('tcpstates-sync'), 'sync');
  const peer = startPeer(pp, sync);
  const w = startWorkload('tcpstates', ['tree', String(port), String(pp), sync]);
  for (let i = 0; i < 500 && !readState(peer.state).startsWith('ready'); i++) sleep(10);
  expect(readState(peer.state)).toMatch(/^ready/);
  return { w, peer };
}

/**
 * Check k of both: 1, every end as it was; 2, every connection finished, what each end of the
 * five connections to the outside sent is what the other received.
 */
function check(k: number, pid: number, state: string, peer: { pid: number; state: string }): void {
  const [t, p] = bothVerdicts(pid, state, peer, 90_000);
  if (k === 1) {
    expect([t, p]).toEqual(['check ok k=1', 'check ok k=1']);
    return;
  }
  expect(t).toMatch(/^check ok k=2( \d+\/\d+){5}$/);
  expect(p).toMatch(/^check ok k=2( \d+\/\d+){5}$/);
  const counts = (v: string) => v.split(' ').slice(3).map((x) => x.split('/').map(Number) as [number, number]);
  const tc = counts(t);
  const pc = counts(p);
  for (let i = 0; i < 5; i++) {
    expect(tc[i]![0], `connection ${i}: sent by the tree`).toBe(pc[i]![1]);
    expect(tc[i]![1], `connection ${i}: received by the tree`).toBe(pc[i]![0]);
  }
  // the open directions carried the tails: 200000 bytes each way where an end had not shut down
  expect(tc.some(([s]) => s >= 200000) && pc.some(([s]) => s >= 200000)).toBe(true);
}

/** The images: one stream a connection, each end's state, how it was shut down. */
function checkImages(dir: string): void {
  const streams = readdirSync(dir).filter((n) => /^tcp-stream-[0-9a-f]+\.img$/.test(n));
  expect(streams.length).toBe(17);
  if (!haveCrit) return;
  const files = (critDecode(path.join(dir, 'files.img')) as { entries: { isk?: { state: unknown; shutdown?: unknown; proto: unknown } }[] }).entries;
  const isks = files.map((f) => f.isk).filter((k) => k && (k.proto === 6 || k.proto === 'TCP'));
  const byState: Record<string, number> = {};
  for (const k of isks) {
    const name = Object.keys(STATE_NUM).find((n) => k!.state === n || k!.state === STATE_NUM[n]) ?? String(k!.state);
    byState[name] = (byState[name] ?? 0) + 1;
    // a FIN received: the receive side is shut down; a FIN of ours: the send side
    const rcv = ['CLOSE_WAIT', 'LAST_ACK', 'CLOSING'].includes(name);
    const snd = ['FIN_WAIT1', 'FIN_WAIT2', 'LAST_ACK', 'CLOSING'].includes(name);
    const how = rcv && snd ? 'BOTH' : rcv ? 'READ' : snd ? 'WRITE' : undefined;
    expect([how, how && { READ: 1, WRITE: 2, BOTH: 3 }[how]], `shutdown of a ${name} end`).toContainEqual(k!.shutdown);
  }
  expect(byState).toEqual(STATES);
}

describe('half-closed TCP connections (--tcp-established)', () => {
  it.skipIf(!haveIptables)('tcpstates: FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK and CLOSING with peers inside (IPv4, IPv6) and outside the tree, round-tripped twice; then every connection finishes: data in the open directions, EOF where a FIN was sent, no reset', () => {
    const [port, pp] = freePorts(2) as [number, number];
    const sync = path.join(tmp('tcpstates-sync'), 'sync');
    const peer = startPeer(pp, sync);
    let k = 0;
    roundTrip('tcpstates', ['tree', String(port), String(pp), sync], (pid, state) => {
      k++;
      expect(lockRules()).toEqual([]);
      check(k, pid, state, peer);
    }, true, () => readState(peer.state).startsWith('ready'), TCP_MOVING, (dir) => {
      // the tree is gone, its 17 connections locked both ways for the restore
      expect(lockRules().length).toBe(34);
      checkImages(dir);
    }, ['--tcp-established'], ['--tcp-established']);
  });

  it.skipIf(!haveIptables)('tcpstates ns: the pairs inside a network namespace of the tree\'s own (made anew on restore, without the dump\'s lock), round-tripped twice; then every connection finishes, no reset', () => {
    // (before the namespace was locked on restore, the segments of a connection made first
    // reached its other end's port before that one was made, and the reset ended it: zdtm
    // socket-tcp-closing, ns flavour, failed at restore with "send: EPIPE")
    const [port] = freePorts(1) as [number];
    const sync = path.join(tmp('tcpstates-sync'), 'sync');
    let k = 0;
    roundTrip('tcpstates', ['ns', String(port), sync], (pid, state) => {
      k++;
      expect(readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
      // the lock taken in the new namespace is gone before the tasks run (and none on the host)
      expect(lockRules()).toEqual([]);
      expect(netnsLockRules(pid)).toEqual([]);
      expect(askVerdict(state, pid, 90_000)).toBe(`check ok k=${k}`);
    }, true, undefined, TCP_MOVING, (dir) => {
      expect(readdirSync(dir).filter((n) => /^tcp-stream-[0-9a-f]+\.img$/.test(n)).length).toBe(12);
    }, ['--tcp-established'], ['--tcp-established']);
  });

  it('without --tcp-established a half-closed connection is refused by name, and --check-only lists it; the tree runs on', () => {
    const { w, peer } = startTree();
    const c = criu(['dump', '--check-only', '-t', String(w.pid)]);
    expect(c.code).toBe(4);
    for (const st of ['FIN_WAIT1', 'FIN_WAIT2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING']) {
      expect(c.stderr).toMatch(new RegExp(`TCP connection \\S+ -> \\S+ is half-closed \\(${st}\\); dump with --tcp-established`));
    }
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    w.kill();
  });
});

describe.skipIf(!CRIU || !haveIptables)(`half-closed TCP connections across CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary: give CRIU=/path/to/criu'})`, () => {
  it('CRIU dumps tcpstates with --tcp-established, crtools restores it: every end in its state, then every connection finishes', () => {
    const { w, peer } = startTree();
    const dir = tmp('tcpstates-criu-dump');
    criuDumpTcp(w.pid, dir);
    checkImages(dir);
    const r = restoreDir(dir, ['--tcp-established']);
    expect(r.code, r.stderr).toBe(0);
    expect(lockRules()).toEqual([]);
    check(1, w.pid, w.state, peer);
    check(2, w.pid, w.state, peer);
    killTree(w.pid);
  });

  it('crtools dumps tcpstates with --tcp-established, CRIU restores it: every end in its state, then every connection finishes', () => {
    const { w, peer } = startTree();
    const dir = tmp('tcpstates-our-dump');
    ourDumpCriuRestoreTcp(w.pid, dir);
    check(1, w.pid, w.state, peer);
    check(2, w.pid, w.state, peer);
    killTree(w.pid);
  });
});
