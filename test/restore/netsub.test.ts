/**
 * Nested network namespaces (issue 17): a tree in network, mount and pid namespaces of its own
 * whose child made another network namespace below it (unshare after fork) with loopback up, an
 * address, sysctls of its own, a TCP listener and an abstract unix socket there, and a
 * grandchild that went back to the init's namespace (setns) holding that unix socket. The dump
 * writes each network namespace as CRIU 4.2 does (netdev/netns/ifaddr-<id>.img..., ids-<pid>.img's
 * net_ns_id per task, the socket's ns_id); the restore makes the nested one with the root's, the
 * child enters it first thing, the grandchild goes back, the socket is made in its namespace.
 * With --sockets the child also holds a TCP connection (both ends), a netlink and a packet socket
 * in its namespace, carried with --tcp-established (locked and repaired in that namespace).
 * Workload test/workloads/netsub.c: round trips, both ways with CRIU 4.2; what is not carried
 * in a nested namespace is refused by name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET, type Fingerprint } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, ourCritDecode, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { netLinks, type NetLink } from '@crtools/sys';
import { bothWaysWithCriu, CRIU, CRIU_COW, CRIU_TIME_NS } from './criu-ref.js';
import { restoreRoot } from './roundtrip.js';
import { TCP_MOVING } from './tcp-helpers.js';

const restoredRoots: number[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

const netOf = (pid: number) => readlinkSync(`/proc/${pid}/ns/net`);

/** init, child, grandchild (as crtools sees them) */
function treeOf(root: number): { child: number; grandchild: number } {
  const pids = treePids(root);
  const ppid = (p: number) => Number(spawnSync('ps', ['-o', 'ppid=', '-p', String(p)], { encoding: 'utf8' }).stdout.trim());
  const child = pids.find((p) => p !== root && ppid(p) === root)!;
  const grandchild = pids.find((p) => p !== root && p !== child)!;
  return { child, grandchild };
}

/** the namespaces as the workload shaped them: the child alone in a network namespace below the init's, holding its state */
function expectShape(root: number, f: Fingerprint): void {
  const { child, grandchild } = treeOf(root);
  expect(netOf(child)).not.toBe(netOf(root));
  expect(netOf(grandchild)).toBe(netOf(root));
  const below = Object.values(f.namespaces?.netBelow ?? {});
  expect(below).toHaveLength(1);
  expect(below[0]!.addresses).toEqual(expect.arrayContaining(['lo inet 127.0.0.1/8 scope host', 'lo inet 10.7.0.1/24 scope global']));
  expect(below[0]!.sysctls['/proc/sys/net/unix/max_dgram_qlen']).toBe('77');
  expect(below[0]!.sysctls['/proc/sys/net/ipv4/conf/lo/arp_ignore']).toBe('2');
  expect(f.namespaces?.net?.sysctls['/proc/sys/net/unix/max_dgram_qlen']).not.toBe('77');
}

type Sk = { ino: number; ns_id?: number; name?: string };

/** The network lock's rules (iptables, IPv4) in task pid's network namespace. */
function lockRulesIn(pid: number): string[] {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'iptables', '-w', '-S'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => l.includes('0xc114'));
}

function ip(pid: number, args: string[]): void {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args], { encoding: 'utf8' });
  expect(r.status, `ip ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** vx0 in the init's namespace, its peer vx1 in the child's: addressed (10.216.0.1/30, .2), MTU 1420, up. */
function addVethAcross(root: number): void {
  const { child } = treeOf(root);
  ip(root, ['link', 'add', 'vx0', 'type', 'veth', 'peer', 'name', 'vx1', 'netns', `/proc/${child}/ns/net`]);
  ip(root, ['link', 'set', 'vx0', 'address', '02:16:00:00:00:01', 'mtu', '1420', 'up']);
  ip(child, ['link', 'set', 'vx1', 'address', '02:16:00:00:00:02', 'mtu', '1420', 'up']);
  ip(root, ['addr', 'add', '10.216.0.1/30', 'dev', 'vx0']);
  ip(child, ['addr', 'add', '10.216.0.2/30', 'dev', 'vx1']);
  // the ends' IPv6 link-local addresses past duplicate address detection (~1 s: tentative until
  // then, without their local route), as the tree's own addresses are by the time it is dumped
  for (const pid of [root, child]) {
    for (let i = 0; i < 500 && spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-6', 'addr', 'show', 'tentative'], { encoding: 'utf8' }).stdout.trim(); i++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/** The device `name` of task pid's network namespace. */
function vethEnd(pid: number, name: string): NetLink {
  const l = netLinks(`/proc/${pid}/ns/net`).find((x) => x.name === name);
  expect(l?.kind, `${name} in ${pid}'s network namespace`).toBe('veth');
  return l!;
}

/**
 * A UDP datagram sent from `from`'s network namespace to `to`'s at `addr` comes back (an echo
 * server there, python3 under nsenter, stopped by its pid).
 */
function datagramCrosses(from: number, to: number, addr: string): boolean {
  const server = spawn('nsenter', [`--net=/proc/${to}/ns/net`, 'python3', '-c',
    `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('${addr}',7100))\ns.settimeout(15)\nd,a=s.recvfrom(100)\ns.sendto(d,a)`], { stdio: 'ignore' });
  try {
    const c = spawnSync('nsenter', [`--net=/proc/${from}/ns/net`, 'python3', '-c',
      `import socket\nc=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nc.settimeout(0.2)\nfor i in range(50):\n  c.sendto(b'x',('${addr}',7100))\n  try:\n    c.recv(100); print('ok'); break\n  except socket.timeout: pass`], { encoding: 'utf8', timeout: 20_000 });
    return c.stdout.trim() === 'ok';
  } finally {
    server.kill('SIGKILL');
  }
}

describe('a network namespace below the tree\'s own (nested)', () => {
  it('netsub round trips twice: each namespace its own images, the child back in its own with lo, address, sysctls, listener, the grandchild back in the init\'s holding the child\'s unix socket (fingerprint seen from inside), verdict ok', () => {
    const w = startWorkload('netsub', []);
    let root = w.pid;
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      const before = fingerprint(root);
      expectShape(root, before);
      const dir = tmp(`netsub-rt-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      // as CRIU 4.2 numbers them: the root's pid, mnt, net (9, 10, 11), then the child's net (12)
      // (the pids inside: the child's shells took some before the grandchild's)
      const tree = critDecode(`${dir}/pstree.img`).entries as { pid: number; ppid: number }[];
      const kid = tree.find((t) => t.ppid === 1)!.pid;
      const grandkid = tree.find((t) => t.ppid === kid)!.pid;
      expect(critDecode(`${dir}/ids-1.img`).entries[0]).toMatchObject({ pid_ns_id: 9, mnt_ns_id: 10, net_ns_id: 11 });
      expect(critDecode(`${dir}/ids-${kid}.img`).entries[0]).toMatchObject({ net_ns_id: 12, mnt_ns_id: 10 });
      expect(critDecode(`${dir}/ids-${grandkid}.img`).entries[0]).toMatchObject({ net_ns_id: 11 });
      const dev = critDecode(`${dir}/netdev-12.img`).entries;
      expect(dev).toMatchObject([{ type: 'LOOPBACK', name: 'lo', peer_nsid: 12 }]);
      expect(critDecode(`${dir}/netns-12.img`).entries[0].unix_conf).toEqual([{ type: 'CTL_32', iarg: 77 }]);
      expect(critDecode(`${dir}/netns-11.img`).entries[0].unix_conf).not.toEqual([{ type: 'CTL_32', iarg: 77 }]);
      // the sockets made in the child's namespace say so; the init's does not need to
      const files = ourCritDecode(`${dir}/files.img`).entries as { type: string; usk?: Sk; isk?: Sk }[];
      const unix = files.flatMap((f) => (f.usk ? [f.usk] : []));
      // (crit's unix_name form: a leading NUL as =00)
      const abstract = (n: number) => unix.find((u) => u.name === `=00netsub-${n}`);
      expect(abstract(1)?.ns_id).toBe(12);
      expect(abstract(0)?.ns_id).toBeUndefined();
      expect(files.flatMap((f) => (f.isk ? [f.isk] : []))).toMatchObject([{ ns_id: 12 }]);
      // Debian's crit decodes every image but the raw ones (ip's and iptables-save's outputs, a
      // tmpfs's tarball: crit decodes none of CRIU's either), which are there for both namespaces
      if (round === 0) {
        const all = readdirSync(dir);
        const raw = /^(ifaddr|route6?|rule|ip6?tables)-\d+\.img$|^tmpfs-dev-|^pages-|\.log$/;
        expect(all).toEqual(expect.arrayContaining(['ifaddr-11.img', 'ifaddr-12.img', 'route-12.img', 'iptables-12.img', 'netdev-12.img', 'netns-12.img']));
        for (const f of all.filter((n) => !raw.test(n))) critDecode(path.join(dir, f));
      }
      expect(waitReaped(root)).toBe(true);
      root = restoreRoot(dir);
      restoredRoots.push(root);
      const after = fingerprint(root);
      expectShape(root, after);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });

  it('netsub --sockets: a TCP connection (both ends), a netlink and a packet socket in the child\'s namespace round trip twice with --tcp-established (refused by name without it, the tree going on): written with that namespace\'s id, a stream for each end; each back in that namespace, the bytes sent each way still there (fingerprint seen from inside), verdict ok', () => {
    const w = startWorkload('netsub', ['--sockets']);
    let root = w.pid;
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      if (round === 0) {
        const r = criu(['dump', '-t', String(root), '-D', tmp('netsub-sk-refused'), '-o', 'dump.log']);
        expect(r.code, r.stderr).toBe(4);
        expect(r.stderr).toMatch(/TCP connection 10\.7\.0\.1:\d+ -> 10\.7\.0\.1:\d+ is established; dump with --tcp-established/);
        expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
        // a dump that leaves the tree running: the connection locked in the child's namespace
        // and lifted there, the connection going on
        const running = tmp('netsub-sk-running');
        const l = criu(['dump', '-t', String(root), '-D', running, '-o', 'dump.log', '-v4', '--tcp-established', '-R']);
        expect(l.code, l.stderr).toBe(0);
        expect(readFileSync(path.join(running, 'dump.log'), 'utf8')).toMatch(/network lock \(iptables\): locked 10\.7\.0\.1:\d+ - 10\.7\.0\.1:\d+/);
        expect(lockRulesIn(treeOf(root).child)).toEqual([]);
        expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      }
      const before = fingerprint(root);
      expectShape(root, before);
      const dir = tmp(`netsub-sk-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log', '--tcp-established']);
      expect(d.code, d.stderr).toBe(0);
      const files = ourCritDecode(`${dir}/files.img`).entries as { isk?: Sk & { state?: unknown }; nlsk?: Sk; psk?: Sk }[];
      // the listener and both ends of the connection, the netlink and the packet socket: the child's namespace's
      const isk = files.flatMap((f) => (f.isk ? [f.isk] : []));
      expect(isk).toHaveLength(3);
      for (const s of isk) expect(s.ns_id).toBe(12);
      expect(files.flatMap((f) => (f.nlsk ? [f.nlsk] : []))).toMatchObject([{ ns_id: 12 }]);
      expect(files.flatMap((f) => (f.psk ? [f.psk] : []))).toMatchObject([{ ns_id: 12 }]);
      const streams = readdirSync(dir).filter((n) => n.startsWith('tcp-stream-'));
      expect(streams).toHaveLength(2);
      // (8 bytes each way not read yet)
      for (const n of streams) expect(critDecode(path.join(dir, n)).entries[0]).toMatchObject({ inq_len: 8 });
      expect(waitReaped(root)).toBe(true);
      root = restoreRoot(dir, ['--tcp-established']);
      restoredRoots.push(root);
      const after = fingerprint(root);
      expectShape(root, after);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...TCP_MOVING])).toEqual([]);
      // the lock the restore put on the connections in the child's new namespace is lifted
      expect(lockRulesIn(treeOf(root).child)).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });

  it.skipIf(!CRIU)(`netsub both ways with CRIU 4.2: crtools restores CRIU's dump (fingerprint), CRIU (--root /) crtools' (the child in its own namespace), verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('netsub', []);
    bothWaysWithCriu('netsub', w.pid, restoredRoots, (root) => {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      return fingerprint(root);
    }, (root, before, dumper, restorer) => {
      const after = fingerprint(root);
      expectShape(root, after);
      if (restorer === 'us') expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...CRIU_TIME_NS, CRIU_COW]), `dumped by ${dumper}, restored by ${restorer}`).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    });
  });

  it.skipIf(!CRIU)(`a veth pair across the init's and the child's namespaces both ways with CRIU 4.2: each end back in its namespace at its index, a datagram crosses it, verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('netsub', []);
    addVethAcross(w.pid);
    let ends: NetLink[] = [];
    bothWaysWithCriu('netsub-veth', w.pid, restoredRoots, (root) => {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      ends = [vethEnd(root, 'vx0'), vethEnd(treeOf(root).child, 'vx1')];
      return fingerprint(root);
    }, (root, _before, dumper, restorer) => {
      const { child } = treeOf(root);
      expect(datagramCrosses(root, child, '10.216.0.2'), `dumped by ${dumper}, restored by ${restorer}`).toBe(true);
      const again = [vethEnd(root, 'vx0'), vethEnd(child, 'vx1')];
      for (const k of [0, 1]) expect(again[k]).toMatchObject({ ifindex: ends[k]!.ifindex, link: ends[k]!.link, linkNetnsid: ends[k]!.linkNetnsid, mtu: 1420, address: ends[k]!.address });
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    });
  });

  it('an IP socket made in a network namespace no task of the tree lives in is refused by name at dump (exit 4), the tree left running', () => {
    // bash's UDP socket made in criu's namespace, held by the tree's root once it moved to its own
    const u = spawn('bash', ['-c', 'exec 3<>/dev/udp/127.0.0.1/9; exec unshare --net sleep 1000'], { stdio: 'ignore', detached: true });
    try {
      const pid = u.pid!;
      for (let i = 0; i < 500; i++) {
        try {
          if (readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep')) break;
        } catch {
          /* (between its execs) */
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(netOf(pid)).not.toBe(netOf(process.pid));
      const d = criu(['dump', '-t', String(pid), '-D', tmp('netsub-foreign-img'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(/fd 3.*IP socket made in a network namespace no task of the tree lives in/);
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
      expect(readlinkSync(`/proc/${pid}/fd/3`)).toMatch(/^socket:/);
    } finally {
      killTreeAndWait(u.pid!);
    }
  });

  it('a veth pair across the init\'s and the child\'s network namespaces round trips twice: each end in its namespace (peer_nsid, netns nsids as CRIU 4.2), its index, name, address, MTU and IP address; a datagram crosses the pair after the restore; verdict ok', () => {
    const w = startWorkload('netsub', []);
    let root = w.pid;
    addVethAcross(root);
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      const { child } = treeOf(root);
      const ends = [vethEnd(root, 'vx0'), vethEnd(child, 'vx1')];
      expect(ends[0].link).toBe(ends[1].ifindex);
      expect(ends[1].link).toBe(ends[0].ifindex);
      expect(datagramCrosses(root, child, '10.216.0.2')).toBe(true);
      const before = fingerprint(root);
      const dir = tmp(`netsub-veth-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      // as CRIU 4.2 writes them: each end's peer_nsid the other's namespace, and the ids each
      // namespace knows the other by
      const dev11 = critDecode(`${dir}/netdev-11.img`).entries as { name: string }[];
      const dev12 = critDecode(`${dir}/netdev-12.img`).entries as { name: string }[];
      expect(dev11.find((e) => e.name === 'vx0')).toMatchObject({ type: 'VETH', ifindex: ends[0].ifindex, peer_ifindex: ends[1].ifindex, peer_nsid: 12, mtu: 1420 });
      expect(dev12.find((e) => e.name === 'vx1')).toMatchObject({ type: 'VETH', ifindex: ends[1].ifindex, peer_ifindex: ends[0].ifindex, peer_nsid: 11, mtu: 1420 });
      expect(critDecode(`${dir}/netns-11.img`).entries[0].nsids).toEqual([{ target_ns_id: 12, netnsid_value: ends[0].linkNetnsid }]);
      expect(critDecode(`${dir}/netns-12.img`).entries[0].nsids).toEqual([{ target_ns_id: 11, netnsid_value: ends[1].linkNetnsid }]);
      expect(waitReaped(root)).toBe(true);
      root = restoreRoot(dir);
      restoredRoots.push(root);
      const after = treeOf(root);
      expect(datagramCrosses(root, after.child, '10.216.0.2')).toBe(true);
      let again = [vethEnd(root, 'vx0'), vethEnd(after.child, 'vx1')];
      // (IFF_RUNNING follows the link's operational state, which the kernel updates a little later)
      for (let i = 0; i < 300 && again.some((l, k) => l.flags !== ends[k]!.flags); i++) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        again = [vethEnd(root, 'vx0'), vethEnd(after.child, 'vx1')];
      }
      for (const k of [0, 1]) {
        expect(again[k]).toMatchObject({ ifindex: ends[k]!.ifindex, link: ends[k]!.link, linkNetnsid: ends[k]!.linkNetnsid, mtu: 1420, flags: ends[k]!.flags });
        expect(again[k]!.address).toEqual(ends[k]!.address);
      }
      expect(compareFingerprints(insideView(before), insideView(fingerprint(root)), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });
});
