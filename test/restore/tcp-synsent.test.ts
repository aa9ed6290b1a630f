/**
 * Issue 15: TCP connects under way (SYN_SENT), carried with --tcp-established as CRIU 4.2
 * carries them (tcpsyn). A peer outside the tree holds full listeners, so the tree's SYNs go
 * unanswered (dropped, no reset): three non-blocking connects (IPv4, IPv6, v4-mapped) stay in
 * SYN_SENT through two round trips under the fingerprint; then the peer answers and each connect
 * completes in the restored task, which talks over it (also a blocking connect(2) a thread is
 * in, restarted after the restore). The images are decoded by Debian's crit,
 * and the same goes both ways with CRIU 4.2. Without --tcp-established the dump refuses them by
 * name, and the tree goes on.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import { CRIU, TCP_MOVING, cleanupTcp, criuDumpTcp, haveIptables, lockRules, ourDumpCriuRestoreTcp, ports, startPeerOf } from './tcp-helpers.js';
import { alive, askVerdict, critDecode, criu, haveCrit, killAllStarted, killTreeAndWait, readState, sleep, startWorkload, tmp, waitVerdict } from '../dump/helpers.js';

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});

const SYN_SENT = 2;

/** A peer whose listeners drop SYNs until it is opened; its ports (the lock rules of the test are theirs). */
function synPeer(): { pid: number; state: string; p4: number; p6: number } {
  const peer = startPeerOf('tcpsyn', ['peer']);
  const m = /p4=(\d+) p6=(\d+)/.exec(readState(peer.state));
  if (!m) throw new Error(`tcpsyn peer: '${readState(peer.state)}'`);
  const p4 = Number(m[1]);
  const p6 = Number(m[2]);
  ports.push(p4, p6);
  return { ...peer, p4, p6 };
}

/** The peer answers from now on (its backlogs grow, its own queued connections are accepted). */
function openPeer(peer: { pid: number; state: string }): void {
  writeFileSync(peer.state, '');
  process.kill(peer.pid, 'SIGUSR1');
  expect(waitVerdict(peer.state)).toBe('check ok open');
}

/** Ask the tree until its connects have completed (a SYN is retransmitted 1, 3, 7... s after the restore's connect). */
function untilConnected(pid: number, state: string): string {
  let v = '';
  for (const end = Date.now() + 40_000; Date.now() < end; sleep(250)) {
    v = askVerdict(state, pid);
    if (!v.startsWith('check ok connecting')) break;
  }
  return v;
}

/** A restored tree: still connecting; once the peer answers, connected; then killed (by pid). */
function connectsThenEnds(w: { pid: number; state: string }, peer: { pid: number; state: string }): void {
  expect(askVerdict(w.state, w.pid)).toBe('check ok connecting 0');
  openPeer(peer);
  expect(untilConnected(w.pid, w.state)).toBe('check ok connected');
  killTreeAndWait(w.pid);
}

/** The connecting sockets of a checkpoint as Debian's crit decodes them, with their streams. */
function synSentImages(dir: string, p4: number, p6: number, blocking = false): void {
  if (!haveCrit) return;
  const files = critDecode(path.join(dir, 'files.img')).entries as any[];
  const tcp = files.filter((f) => f.isk && Number(f.isk.proto) === 6).map((f) => f.isk);
  const ports = blocking ? [p4, p4, p4, p6] : [p4, p4, p6];
  expect(tcp.map((k) => Number(k.state))).toEqual(ports.map(() => SYN_SENT));
  expect(tcp.map((k) => Number(k.dst_port)).sort()).toEqual(ports.sort());
  for (const k of tcp) {
    const stream = readdirSync(dir).find((f) => f === `tcp-stream-${Number(k.ino).toString(16)}.img`);
    expect(stream, `tcp-stream of socket ${k.ino}`).toBeDefined();
    const e = critDecode(path.join(dir, stream!)).entries[0];
    // nothing queued either way while connecting; the sequence number after the SYN
    expect([Number(e.inq_len), Number(e.outq_len), Number(e.unsq_len)]).toEqual([0, 0, 0]);
    expect(Number(e.outq_seq)).toBeGreaterThan(0);
  }
}

describe.skipIf(!haveIptables)('TCP connects under way (SYN_SENT)', () => {
  it('tcpsyn: three connects (IPv4, IPv6, v4-mapped) come back connecting, twice; once the peer answers each completes and talks', () => {
    const peer = synPeer();
    let round = 0;
    roundTrip('tcpsyn', ['conn', String(peer.p4), String(peer.p6)], (pid, st) => {
      // the lock the dump put on each connection is lifted once the tree is restored
      expect(lockRules()).toEqual([]);
      expect(askVerdict(st, pid)).toBe('check ok connecting 0');
      if (round++ === 0) return;
      openPeer(peer);
      expect(untilConnected(pid, st)).toBe('check ok connected');
    }, true, undefined, TCP_MOVING, (dir) => synSentImages(dir, peer.p4, peer.p6), ['--tcp-established'], ['--tcp-established']);
  });

  it('tcpsyn blocking: also a blocking connect a thread is in (interrupted by the dump, restarted after the restore): it returns 0 once the peer answers, twice', () => {
    const peer = synPeer();
    let round = 0;
    roundTrip('tcpsyn', ['conn', String(peer.p4), String(peer.p6), 'blocking'], (pid, st) => {
      expect(lockRules()).toEqual([]);
      expect(askVerdict(st, pid)).toBe('check ok connecting 0');
      if (round++ === 0) return;
      openPeer(peer);
      expect(untilConnected(pid, st)).toBe('check ok connected');
    }, true, undefined, TCP_MOVING, (dir) => synSentImages(dir, peer.p4, peer.p6, true), ['--tcp-established'], ['--tcp-established']);
  });

  it('refused by name without --tcp-established (task, fd, both addresses, SYN_SENT); the tree goes on connecting, then connects', () => {
    const peer = synPeer();
    const w = startWorkload('tcpsyn', ['conn', String(peer.p4), String(peer.p6)]);
    const c = criu(['dump', '--check-only', '-t', String(w.pid)]);
    expect(c.code).toBe(4);
    expect(c.stderr).toMatch(new RegExp(`task ${w.pid} fd \\d+ \\(socket:\\[\\d+\\]\\): TCP connection 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${peer.p4} is being set up \\(SYN_SENT`));
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('tcpsyn-refused')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(/is being set up \(SYN_SENT: a connect under way\); dump with --tcp-established/);
    expect(lockRules()).toEqual([]);
    expect(alive(w.pid)).toBe(true);
    connectsThenEnds(w, peer);
  });
});

describe.skipIf(!CRIU || !haveIptables)(`tcpsyn between crtools and CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary here'})`, () => {
  it('dumped by CRIU (SYN_SENT with its stream, locked; a blocking connect among them), restored by us: still connecting, lock lifted, then connected', () => {
    const peer = synPeer();
    const w = startWorkload('tcpsyn', ['conn', String(peer.p4), String(peer.p6), 'blocking']);
    const dir = tmp('tcpsyn-criu');
    criuDumpTcp(w.pid, dir);
    synSentImages(dir, peer.p4, peer.p6, true);
    const r = criu(['restore', '-D', dir, '-d', '--tcp-established']);
    expect(r.code, r.stderr).toBe(0);
    expect(lockRules()).toEqual([]);
    connectsThenEnds(w, peer);
  });

  it('dumped by us (a blocking connect among them), restored by CRIU: still connecting, then connected', () => {
    const peer = synPeer();
    const w = startWorkload('tcpsyn', ['conn', String(peer.p4), String(peer.p6), 'blocking']);
    const dir = tmp('tcpsyn-ours');
    ourDumpCriuRestoreTcp(w.pid, dir);
    connectsThenEnds(w, peer);
  });
});
