/**
 * The network lock of a tree with a network namespace of its own (CRIU 4.2's, zdtm's
 * netns_lock_iptables and netns_lock_nftables): the dump locks the whole namespace, so that a
 * namespace that outlives the tree (`ip netns add`, a container's bound one) drops every packet
 * not marked 0xC114 until a restore: a connection to a closed port, refused at once before the
 * dump, times out after it (iptables: chain CRIU jumped to from INPUT and OUTPUT, for IPv4 and
 * IPv6; nftables: table inet CRIU-<run id>). A dump with -R lifts it again (the tree goes on,
 * reachable). The tree is restored (in a new namespace) and checks itself. And --join-ns net
 * takes such a bound namespace file (ip netns's /run/netns/NAME), not only /proc/PID/ns/net:
 * restored with it into the namespace it was dumped in, the tree comes back there with its
 * connections and the dump's lock is lifted (both ways with CRIU 4.2); a namespace that is not
 * the dumped one is refused by name.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alive, criu, killAllStarted, killTree, startWorkload, tmp, waitGone, waitReaped } from './helpers.js';
import { killRestored, restoreDir } from '../restore/roundtrip.js';
import { bothVerdicts, cleanupTcp, freePorts, startPeerOf } from '../restore/tcp-helpers.js';
import { CRIU, runBy } from '../restore/criu-ref.js';

const NS = `crtools-lock-${process.pid}`;
const nsFile = `/run/netns/${NS}`;
const inNs = (argv: string[]) => spawnSync('nsenter', [`--net=${nsFile}`, '--', ...argv], { encoding: 'utf8', timeout: 30_000 });

/** How a TCP connect to 127.0.0.1:9 (nothing listens) ends inside the namespace: refused, or timeout (the lock drops it). */
function probe(): string {
  const r = inNs(['/usr/bin/python3', '-c', [
    'import socket', 's = socket.socket()', 's.settimeout(0.5)',
    'try:\n s.connect(("127.0.0.1", 9)); print("connected")\nexcept ConnectionRefusedError: print("refused")\nexcept socket.timeout: print("timeout")',
  ].join('\n')]);
  return r.stdout.trim() || r.stderr.trim();
}

function makeNs(): void {
  spawnSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
  expect(inNs(['ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
}

const OTHER = `crtools-lock-other-${process.pid}`;

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});
afterAll(() => {
  spawnSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'delete', OTHER], { stdio: 'ignore' });
});

const haveNft = spawnSync('nft', ['list', 'tables'], { stdio: 'ignore' }).status === 0;

/** What of a network lock is left in the namespace: iptables' chain CRIU (IPv4, IPv6), nftables' CRIU-* tables. */
function lockLeft(): string[] {
  const left = ['iptables', 'ip6tables'].flatMap((t) => inNs([t, '-S']).stdout.split('\n').filter((l) => l.includes('CRIU')).map((l) => `${t} ${l}`));
  if (haveNft) left.push(...inNs(['nft', 'list', 'tables']).stdout.split('\n').filter((l) => l.includes('CRIU')));
  return left;
}

describe('network lock of a tree in a network namespace of its own', () => {
  it('iptables: the dump locks the whole namespace (chain CRIU, IPv4 and IPv6) and leaves it locked; -R lifts it; the tree restores', () => {
    makeNs();
    const w = startWorkload('pattern', ['1'], tmp('nslock-ipt'), ['nsenter', `--net=${nsFile}`, '--']);
    expect(readlinkSync(`/proc/${w.pid}/ns/net`)).toBe(`net:[${statSync(nsFile).ino}]`);
    expect(probe()).toBe('refused');
    // -R: locked while frozen, lifted once the tree goes on
    const kept = tmp('nslock-ipt-R');
    const d0 = criu(['dump', '-t', String(w.pid), '-D', kept, '-R', '--network-lock', 'iptables', '-o', 'dump.log', '-v4']);
    expect(d0.code, d0.stderr).toBe(0);
    const log0 = readFileSync(path.join(kept, 'dump.log'), 'utf8');
    expect(log0).toContain("network lock (iptables): the tree's network namespace locked");
    expect(log0).toContain('network lock (iptables): the network namespace unlocked');
    expect(inNs(['iptables', '-S']).stdout).not.toContain('CRIU');
    expect(probe()).toBe('refused');
    expect(w.check()).toBe('check ok bad=0');
    // a dump that ends the tree leaves the namespace locked for the restore
    const dir = tmp('nslock-ipt');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--network-lock', 'iptables']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    for (const tool of ['iptables', 'ip6tables']) {
      const rules = inNs([tool, '-S']).stdout.split('\n');
      expect(rules, tool).toEqual(expect.arrayContaining(['-N CRIU', '-A INPUT -j CRIU', '-A OUTPUT -j CRIU', '-A CRIU -m mark --mark 0xc114 -j ACCEPT', '-A CRIU -j DROP']));
    }
    expect(probe()).toBe('timeout');
    // (restored in a namespace of its own, made from the images: the lock chain is not put in it)
    const r = restoreDir(dir, ['--network-lock', 'iptables']);
    expect(r.code, r.stderr).toBe(0);
    expect(w.check()).toBe('check ok bad=0');
    expect(spawnSync('nsenter', ['-t', String(w.pid), '-n', 'iptables', '-S'], { encoding: 'utf8' }).stdout).not.toContain('CRIU');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('nftables: the dump locks the whole namespace (table inet CRIU-<run id>, policy drop) and leaves it locked; the tree restores', () => {
    makeNs();
    const w = startWorkload('pattern', ['1'], tmp('nslock-nft'), ['nsenter', `--net=${nsFile}`, '--']);
    expect(probe()).toBe('refused');
    const dir = tmp('nslock-nft');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--network-lock', 'nftables']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const tables = inNs(['nft', 'list', 'tables']).stdout;
    expect(tables).toMatch(/^table inet CRIU-[0-9a-f]+-[0-9a-f]+$/m);
    expect(probe()).toBe('timeout');
    const r = restoreDir(dir, ['--network-lock', 'nftables']);
    expect(r.code, r.stderr).toBe(0);
    expect(w.check()).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('--join-ns net:/run/netns/NAME (a bound namespace file) is joined; uts: on it is refused as another kind', () => {
    makeNs();
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('nslock-join');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir]).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const bad = restoreDir(dir, ['--join-ns', `uts:${nsFile}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${nsFile} is not a uts namespace`);
    const r = restoreDir(dir, ['--join-ns', `net:${nsFile}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(`/proc/${w.pid}/ns/net`)).toBe(`net:[${statSync(nsFile).ino}]`);
    expect(w.check()).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  // zdtm's netns_lock_iptables / netns_lock_nftables: the tree is restored with --join-ns net
  // into the namespace it was dumped in (bound by `ip netns`), where a peer outside the tree
  // waits; the restore finds the dump's lock there and lifts it once the tasks are back
  for (const method of ['iptables', 'nftables'] as const) {
    it(`${method}: --join-ns net into the dumped namespace: the tree and its connections (a peer outside the tree in it) come back in it, and the dump's lock is lifted there`, (ctx) => {
      if (method === 'nftables' && !haveNft) return ctx.skip();
      makeNs();
      const enter = ['nsenter', `--net=${nsFile}`, '--'];
      const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
      const peer = startPeerOf('tcpconn', ['peer', String(pp)], enter);
      const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)], tmp(`nslock-jtcp-${method}`), enter);
      const dir = tmp(`nslock-jtcp-${method}`);
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--tcp-established', '--network-lock', method]);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      expect(lockLeft().length).toBeGreaterThan(0);
      expect(probe()).toBe('timeout');
      const r = restoreDir(dir, ['--join-ns', `net:${nsFile}`, '--tcp-established', '-v4', '-o', 'restore.log']);
      expect(r.code, r.stderr).toBe(0);
      expect(readlinkSync(`/proc/${w.pid}/ns/net`)).toBe(`net:[${statSync(nsFile).ino}]`);
      expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toContain(`network lock (${method}): the network namespace unlocked`);
      expect(lockLeft()).toEqual([]);
      expect(probe()).toBe('refused');
      expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
      killTree(w.pid);
      expect(waitGone(w.pid)).toBe(true);
    });
  }

  it('--join-ns net into a namespace that is not the dumped one (another address, another device) is refused by name (exit 4); no task is left', () => {
    makeNs();
    const w = startWorkload('pattern', ['1'], tmp('nslock-jother'), ['nsenter', `--net=${nsFile}`, '--']);
    const dir = tmp('nslock-jother');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--network-lock', 'iptables']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    spawnSync('ip', ['netns', 'delete', OTHER], { stdio: 'ignore' });
    expect(spawnSync('ip', ['netns', 'add', OTHER]).status).toBe(0);
    const other = `/run/netns/${OTHER}`;
    const ip = (...a: string[]) => expect(spawnSync('ip', ['-n', OTHER, ...a]).status).toBe(0);
    ip('link', 'set', 'lo', 'up');
    ip('addr', 'add', '10.77.0.1/24', 'dev', 'lo');
    const r1 = restoreDir(dir, ['--join-ns', `net:${other}`]);
    expect(r1.code).toBe(4);
    expect(r1.stderr).toContain(`--join-ns net:${other}: the checkpoint holds a network namespace of its own and the joined one is not it (address`);
    expect(alive(w.pid)).toBe(false);
    ip('addr', 'del', '10.77.0.1/24', 'dev', 'lo');
    ip('link', 'add', 'v7a', 'type', 'veth', 'peer', 'name', 'v7b');
    const r2 = restoreDir(dir, ['--join-ns', `net:${other}`]);
    expect(r2.code).toBe(4);
    expect(r2.stderr).toMatch(/it has veth v7[ab] /);
    expect(alive(w.pid)).toBe(false);
    // (the dumped namespace, still locked, is the one that takes it)
    expect(probe()).toBe('timeout');
    const r = restoreDir(dir, ['--join-ns', `net:${nsFile}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(probe()).toBe('refused');
    expect(w.check()).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  describe.skipIf(!CRIU)(`with CRIU 4.2 (${CRIU})`, () => {
    for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
      it(`dumped by ${by} (the namespace locked), restored by ${to} with --join-ns net into it: the lock lifted, verdict ok`, () => {
        makeNs();
        const w = startWorkload('pattern', ['1'], tmp(`nslock-x-${by}`), ['nsenter', `--net=${nsFile}`, '--']);
        const dir = tmp(`nslock-x-${by}`);
        runBy(by, dir, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--network-lock', 'iptables']);
        expect(waitReaped(w.pid)).toBe(true);
        expect(probe()).toBe('timeout');
        runBy(to, dir, ['restore', '-D', dir, '-d', '-o', 'restore.log', '--join-ns', `net:${nsFile}`]);
        expect(readlinkSync(`/proc/${w.pid}/ns/net`)).toBe(`net:[${statSync(nsFile).ino}]`);
        expect(lockLeft()).toEqual([]);
        expect(probe()).toBe('refused');
        expect(w.check()).toBe('check ok bad=0');
        killTree(w.pid);
        expect(waitGone(w.pid)).toBe(true);
      });
    }
  });
});
