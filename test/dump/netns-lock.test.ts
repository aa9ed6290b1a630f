/**
 * The network lock of a tree with a network namespace of its own (CRIU 4.2's, zdtm's
 * netns_lock_iptables and netns_lock_nftables): the dump locks the whole namespace, so that a
 * namespace that outlives the tree (`ip netns add`, a container's bound one) drops every packet
 * not marked 0xC114 until a restore: a connection to a closed port, refused at once before the
 * dump, times out after it (iptables: chain CRIU jumped to from INPUT and OUTPUT, for IPv4 and
 * IPv6; nftables: table inet CRIU-<run id>). A dump with -R lifts it again (the tree goes on,
 * reachable). The tree is restored (in a new namespace) and checks itself. And --join-ns net
 * takes such a bound namespace file (ip netns's /run/netns/NAME), not only /proc/PID/ns/net.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { criu, killAllStarted, killTree, startWorkload, tmp, waitGone, waitReaped } from './helpers.js';
import { killRestored, restoreDir } from '../restore/roundtrip.js';

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

afterEach(() => {
  killRestored();
  killAllStarted();
});
afterAll(() => {
  spawnSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
});

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
});
