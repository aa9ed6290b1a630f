import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { savedAddresses, withoutLinkStateFlags } from '../src/netns.js';
import { restoreExternals } from '../src/net-externals.js';
import { treeNetPeers } from '../src/plan/namespaces.js';
import type { NetLinkPlan, NetPlan } from '../src/plan.js';

/** An RTM_NEWROUTE message as `ip route save` writes it: nlmsghdr, rtmsg, one RTA_OIF attribute. */
function route(flags: number, type = 24): Buffer {
  const m = Buffer.alloc(16 + 12 + 8);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE(type, 4);
  m.writeUInt8(2, 16); // AF_INET
  m.writeUInt32LE(flags, 24);
  m.writeUInt16LE(8, 28);
  m.writeUInt16LE(4, 30); // RTA_OIF
  m.writeUInt32LE(3, 32);
  return m;
}

describe("routes saved while their link had no carrier (ip route save's output)", () => {
  it('lose the kernel-computed DEAD and LINKDOWN flags, keep the others, other messages as they are', () => {
    const magic = Buffer.from([0x24, 0x12, 0x31, 0x45]);
    const saved = Buffer.concat([magic, route(0x10 | 0x1 | 0x4), route(0x10, 25), route(0)]);
    const out = withoutLinkStateFlags(saved)!;
    expect(out.length).toBe(saved.length);
    expect(out.readUInt32LE(4 + 24)).toBe(0x4);
    expect(out.readUInt32LE(4 + 36 + 24)).toBe(0x10); // not RTM_NEWROUTE: left
    expect(out.subarray(4 + 72).equals(route(0))).toBe(true);
    expect(saved.readUInt32LE(4 + 24)).toBe(0x15); // the input is not changed
    const clean = Buffer.concat([magic, route(0)]);
    expect(withoutLinkStateFlags(clean)).toBe(clean);
    expect(withoutLinkStateFlags(undefined)).toBeUndefined();
  });
});

/** An RTM_NEWADDR message as `ip addr save` writes it: nlmsghdr, ifaddrmsg, IFA_ADDRESS, IFA_LOCAL (v4), IFA_CACHEINFO. */
function addr(family: number, prefix: number, index: number, a: number[], seq: number, stamp: number): Buffer {
  const attr = (type: number, v: Buffer) => {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(4 + v.length, 0);
    h.writeUInt16LE(type, 2);
    return Buffer.concat([h, v, Buffer.alloc((4 - (v.length % 4)) % 4)]);
  };
  const cache = Buffer.alloc(16);
  cache.writeUInt32LE(stamp, 8);
  const body = Buffer.concat([attr(1, Buffer.from(a)), ...(family === 2 ? [attr(2, Buffer.from(a))] : []), attr(6, cache)]);
  const m = Buffer.concat([Buffer.alloc(24), body]);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE(20, 4);
  m.writeUInt32LE(seq, 8);
  m.writeUInt8(family, 16);
  m.writeUInt8(prefix, 17);
  m.writeUInt32LE(index, 20);
  return m;
}

describe("a namespace's addresses (ip addr save's output), compared", () => {
  it('as index, family/prefix and address, sorted; sequence numbers and lifetimes left out', () => {
    const magic = Buffer.from([0x22, 0x12, 0x36, 0x47]);
    const lo6 = [...Array(15).fill(0), 1];
    const a = Buffer.concat([magic, addr(2, 8, 1, [127, 0, 0, 1], 7, 100), addr(10, 128, 1, lo6, 7, 100)]);
    const b = Buffer.concat([magic, addr(10, 128, 1, lo6, 9, 555), addr(2, 8, 1, [127, 0, 0, 1], 9, 555)]);
    expect(savedAddresses(a)).toEqual(['1 10/128 00000000000000000000000000000001', '1 2/8 7f000001']);
    expect(savedAddresses(b)).toEqual(savedAddresses(a));
    expect(savedAddresses(Buffer.concat([magic, addr(2, 24, 1, [10, 77, 0, 1], 1, 1)]))).toEqual(['1 2/24 0a4d0001']);
    expect(savedAddresses(undefined)).toEqual([]);
  });
});

describe('the network devices\' externals (--veth-pair, --external veth[]/macvlan[], RPC veths)', () => {
  it('veth pairs (the veths list first, the first naming a device wins), macvlan lower devices, external mounts', () => {
    const n = restoreExternals({ veths: [{ if_in: 'eth0', if_out: 'vh0' }], external: ['mnt[/a]:/b', 'veth[eth0]:other', 'veth[eth1]:vh1@br0', 'macvlan[mv0]:ens3'], ext_mnt: [{ key: '/c', val: '/d' }] });
    expect([...n.veths]).toEqual([['eth0', { name: 'vh0' }], ['eth1', { name: 'vh1', bridge: 'br0' }]]);
    expect([...n.macvlans]).toEqual([['mv0', 'ens3']]);
    expect([...n.netdevs!]).toEqual([]);
    // the external mounts: ext_mnt's, then the mnt[] forms
    expect([...n.mounts]).toEqual([['/c', '/d'], ['/a', '/b']]);
  });

  it('a name the kernel would not take is a usage error; another external form is refused by name', () => {
    const err = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return isCrtoolsError(e) ? `${e.exitCode} ${e.message}` : String(e);
      }
      return 'no error';
    };
    expect(err(() => restoreExternals({ veths: [{ if_in: 'eth0', if_out: 'a-name-longer-than-15' }] }))).toMatch(/^2 restore: invalid veth pair eth0=a-name-longer-than-15 /);
    expect(err(() => restoreExternals({ veths: [{ if_in: '', if_out: 'vh0' }] }))).toMatch(/^2 restore: invalid veth pair =vh0 /);
    expect(err(() => restoreExternals({ external: ['veth[eth0]:vh0@'] }))).toMatch(/^2 restore: invalid veth pair --external veth\[eth0\]:vh0@ /);
    expect(err(() => restoreExternals({ external: ['veth[eth0]'] }))).toMatch(/^2 restore: invalid veth pair --external veth\[eth0\] /);
    expect(err(() => restoreExternals({ external: ['macvlan[mv0]'] }))).toBe('2 restore: invalid --external macvlan[mv0] (macvlan[IN]:DEVICE)');
    expect(err(() => restoreExternals({ external: ['mnt[/a]'] }))).toBe('2 restore: invalid --external mnt[/a] (mnt[KEY]:PATH, or mnt[])');
    expect(err(() => restoreExternals({ external: ['mnt[]:x'] }))).toBe('2 restore: invalid --external mnt[]:x (mnt[KEY]:PATH, or mnt[])');
    // (mnt[] and its flags: the mounts the dump found external by itself, by the key CRIU writes for them)
    for (const e of ['mnt[]', 'mnt[]:', 'mnt[]:m', 'mnt[]:s']) expect([...restoreExternals({ external: [e] }).mounts], e).toEqual([['CRIU:AUTOGENERATED', '']]);
    expect([...restoreExternals({ auto_ext_mnt: true }).mounts]).toEqual([['CRIU:AUTOGENERATED', '']]);
    expect(err(() => restoreExternals({ external: ['tty[88:1]:x'] }))).toMatch(/^4 --external tty\[88:1\]:x: a restore takes mnt\[KEY\]:PATH, veth/);
    expect(err(() => restoreExternals({ external: ['netdev[eth0]'] }))).toBe('2 restore: invalid --external netdev[eth0] (netdev[IN]:DEVICE)');
    expect(err(() => restoreExternals({ external: ['netdev[eth0]:a-name-longer-than-15'] }))).toBe('2 restore: invalid --external netdev[eth0]:a-name-longer-than-15 (netdev[IN]:DEVICE)');
  });

  it('netdev[IN]:DEVICE names a device of criu\'s namespace moved in as the veth IN (the first naming IN wins), as CRIU 4.2 takes it', () => {
    const n = restoreExternals({ external: ['netdev[eth0]:vc1', 'netdev[eth0]:vc2', 'netdev[eth1]:vc3'] });
    expect([...n.netdevs!]).toEqual([['eth0', 'vc1'], ['eth1', 'vc3']]);
    expect([...n.veths]).toEqual([]);
  });
});

describe('veth pairs across two of the tree\'s network namespaces (treeNetPeers)', () => {
  const net = (id: number, links: NetLinkPlan[], nsids?: Map<number, number>): NetPlan => ({ id, links, all4: [], def4: [], all6: [], def6: [], unix: [], ipv4: [], raw: {}, ...(nsids ? { nsids } : {}) });
  const veth = (name: string, ifindex: number, peer: number, ns: number): NetLinkPlan => ({ kind: 'veth', name, ifindex, flags: 0, mtu: 1500, conf4: [], conf6: [], peer: { ifindex: peer, ns: { id: ns, name: '' } } });

  it('each end is given its peer\'s name in the other namespace', () => {
    const a = net(11, [veth('vx0', 5, 7, 12)], new Map([[12, 0]]));
    const b = net(12, [veth('vx1', 7, 5, 11)], new Map([[11, 0]]));
    treeNetPeers(new Map([[11, a], [12, b]]));
    expect(a.links[0]!.peer!.ns).toEqual({ id: 12, name: 'vx1' });
    expect(b.links[0]!.peer!.ns).toEqual({ id: 11, name: 'vx0' });
  });

  it('a peer that is not there, or does not name the end back, or a namespace not the tree\'s, is one error naming the image', () => {
    const cases: [string, Map<number, NetPlan>][] = [
      ['not one of the tree\'s', new Map([[11, net(11, [veth('vx0', 5, 7, 13)])]])],
      ['is not a veth naming it back', new Map([[11, net(11, [veth('vx0', 5, 7, 12)])], [12, net(12, [veth('vx1', 7, 6, 11)])]])],
      ['knows namespace 14 by id', new Map([[11, net(11, [], new Map([[14, 1]]))]])],
    ];
    for (const [why, nets] of cases) {
      let err: unknown;
      try {
        treeNetPeers(nets);
      } catch (e) {
        err = e;
      }
      expect(isCrtoolsError(err), why).toBe(true);
      expect((err as Error).message).toMatch(/^(netdev|netns)-11\.img: /);
      expect((err as Error).message).toContain(why);
    }
  });
});
