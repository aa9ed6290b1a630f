/**
 * A tree in a network namespace of its own (issue 17, the network part): loopback up with a
 * second address, a route, net sysctls of the namespace and of lo, a TCP listener and a UDP
 * socket on 127.0.0.1 (and, with "tcp", an established connection between two of its own
 * sockets), dumped as CRIU 4.2 dumps it (netdev/netns-<id>.img, the raw outputs of ip and
 * iptables-save) and restored into a new namespace made before the root, the sockets inside it.
 * CRIU 4.2 interop both ways. Workload test/workloads/netns.c.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTreeAndWait, ourCritDecode, startWorkload, tmp, waitReaped } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';
import { TCP_MOVING } from './tcp-helpers.js';
import { CRIU, runBy } from './criu-ref.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const VERDICT = 'check ok child=1';

function netLink(pid: number): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/** The namespace's state the workload set, as the fingerprint shows it. */
function expectNetPrint(pid: number): void {
  const n = fingerprint(pid).namespaces!;
  expect(n.own).toContain('net');
  const net = n.net!;
  expect(net.links).toEqual([{ name: 'lo', ifindex: 1, type: 772, flags: '0x10049', mtu: 65536, address: '00:00:00:00:00:00' }]);
  expect(net.addresses).toEqual(expect.arrayContaining(['lo inet 127.0.0.1/8 scope host', 'lo inet 10.1.2.3/24 scope global']));
  expect(net.routes).toEqual(expect.arrayContaining(['dst 10.9.0.0/16 dev lo scope link']));
  expect(net.sysctls['/proc/sys/net/unix/max_dgram_qlen']).toBe('123');
  expect(net.sysctls['/proc/sys/net/ipv4/conf/lo/arp_ignore']).toBe('2');
  expect(net.sysctls['/proc/sys/net/ipv6/conf/default/hop_limit']).toBe('44');
  expect(net.sysctls['/proc/sys/net/ipv6/conf/lo/mtu']).toBe('1280');
}

describe('a tree in a network namespace of its own', () => {
  it('netns round trips twice: lo, addresses, routes, sysctls, listener and UDP socket inside (fingerprint), verdict ok', () => {
    roundTrip('netns', [], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      expect(netLink(pid)).not.toBe(netLink(process.pid));
      expectNetPrint(pid);
    }, true, undefined, [], (dir, pid) => {
      const ids = critDecode(`${dir}/ids-${pid}.img`).entries[0];
      expect(ids.net_ns_id).toBe(9);
      const dev = critDecode(`${dir}/netdev-9.img`).entries;
      expect(dev).toHaveLength(1);
      expect(dev[0]).toMatchObject({ type: 'LOOPBACK', ifindex: 1, mtu: 65536, flags: 0x10049, name: 'lo', peer_ifindex: 1, peer_nsid: 9 });
      expect(dev[0].conf4).toHaveLength(30);
      expect(dev[0].conf6).toHaveLength(42);
      expect(dev[0].conf4[6]).toEqual({ type: 'CTL_32', iarg: 2 }); // arp_ignore
      const ns = critDecode(`${dir}/netns-9.img`).entries[0];
      expect(ns.unix_conf).toEqual([{ type: 'CTL_32', iarg: 123 }]);
      expect(ns.def_conf6[19]).toEqual({ type: 'CTL_32', iarg: 44 }); // hop_limit
      expect(ns.all_conf4[15]).toEqual({ type: 'CTL_32', iarg: 1 }); // log_martians
      // our own crit knows ipv4_sysctl (Debian's 3.17 does not): ping_group_range at its default, no value
      expect(ourCritDecode(`${dir}/netns-9.img`).entries[0].ipv4_sysctl).toEqual([{ type: 'CTL_STR' }]);
      // the raw images: ip's save formats (their magic words) and iptables-save's text
      expect(readFileSync(`${dir}/ifaddr-9.img`).readUInt32LE(0)).toBe(0x47361222);
      expect(readFileSync(`${dir}/route-9.img`).readUInt32LE(0)).toBe(0x45311224);
      const files = readdirSync(dir);
      expect(files).toEqual(expect.arrayContaining(['route6-9.img', 'rule-9.img', 'iptables-9.img', 'ip6tables-9.img']));
    });
  });

  it('netns tcp: an established connection inside the namespace round trips twice with --tcp-established, verdict ok', () => {
    roundTrip('netns', ['tcp'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      expectNetPrint(pid);
    }, true, undefined, TCP_MOVING, undefined, ['--tcp-established'], ['--tcp-established']);
  });

  it('a device of a kind not carried is refused by name (exit 4); the tree runs on', () => {
    // an ifb device inside the namespace (loopback, veth, macvlan, bridge and tun/tap are carried)
    const w = startWorkload('netns', []);
    const add = spawnSync('nsenter', [`--net=/proc/${w.pid}/ns/net`, 'ip', 'link', 'add', 'fb0', 'type', 'ifb'], { encoding: 'utf8' });
    expect(add.status, add.stderr).toBe(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('netns-ifb')]);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(/network device fb0 \(ifb\), which crtools does not carry/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killTreeAndWait(w.pid);
  });

  it('its packet filter tables (an iptables rule, an nftables table with a set, a hooked chain and a counter) are kept as CRIU built with libnftables keeps them (nft\'s ruleset in nftables-<id>.img, read before the dump\'s lock) and made again by the restore, listed the same', () => {
    const w = startWorkload('netns', []);
    const inNs = (pid: number, tool: string, args: string[], input?: string) => {
      const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, tool, ...args], { encoding: 'utf8', ...(input ? { input } : {}) });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    inNs(w.pid, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '9999', '-j', 'DROP']);
    inNs(w.pid, 'nft', ['-f', '-'], [
      'table inet mine {',
      '  set blocked { type ipv4_addr; elements = { 10.9.9.9, 10.9.9.10 } }',
      '  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked counter packets 3 bytes 180 drop; }',
      '}',
    ].join('\n'));
    const before = inNs(w.pid, 'nft', ['list', 'ruleset']);
    expect(before).toMatch(/10\.9\.9\.9[\s\S]*counter packets 3 bytes 180 drop/);
    expect(before).toMatch(/tcp dport 9999 counter packets 0 bytes 0 drop/);
    const dir = tmp('netns-nft');
    // (the default lock, iptables': a chain CRIU in the namespace's table ip filter while dumped)
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(readFileSync(`${dir}/nftables-9.img`, 'utf8')).toBe(before);
    expect(waitReaped(w.pid)).toBe(true);
    const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log']);
    expect(r.code, r.stderr).toBe(0);
    try {
      expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
      expect(inNs(w.pid, 'nft', ['list', 'ruleset'])).toBe(before);
    } finally {
      killTreeAndWait(w.pid);
    }
  });

  it('an nftables ruleset nft cannot read back is refused by name (exit 4); the tree runs on', () => {
    const w = startWorkload('netns', []);
    // (an iptables-nft rule with a match nft has no expression for: nft lists it as it cannot parse)
    const add = spawnSync('nsenter', [`--net=/proc/${w.pid}/ns/net`, 'iptables', '-A', 'INPUT', '-m', 'recent', '--name', 'x', '--rcheck', '-j', 'DROP'], { encoding: 'utf8' });
    expect(add.status, add.stderr).toBe(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('netns-nft-bad')]);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(/an nftables ruleset nft cannot read back/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killTreeAndWait(w.pid);
  });
});

describe.skipIf(!CRIU)(`a tree in a network namespace of its own between crtools and CRIU (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
  for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
    it(`netns: dumped by ${by}, restored by ${to}, verdict ${VERDICT}`, () => {
      const w = startWorkload('netns', []);
      const dir = tmp(`x-netns-${by}-img`);
      mkdirSync(dir, { recursive: true });
      const run = (who: 'CRIU' | 'us', args: string[]) => runBy(who, dir, args);
      run(by, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(waitReaped(w.pid)).toBe(true);
      run(to, ['restore', '-D', dir, '-d', '-o', 'restore.log']);
      try {
        expect(askVerdict(w.state, w.pid, 20_000)).toBe(VERDICT);
        expect(netLink(w.pid)).not.toBe(netLink(process.pid));
        expectNetPrint(w.pid);
      } finally {
        killTreeAndWait(w.pid);
      }
    });
  }
});
