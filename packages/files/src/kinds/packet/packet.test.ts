import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { packetPlan } from './plan.js';

const ctx = { id: 1, what: 'pid 1 fd 3', pid: 1, index: 0 };
const psk = {
  id: 18, type: 2, protocol: 0xb588, flags: 2, ifindex: 1, version: 1, reserve: 0, aux_data: true, orig_dev: false, vnet_hdr: false,
  loss: false, timestamp: 0, copy_thresh: 0, mclist: [{ index: 1, type: 0, addr: Buffer.from([1, 0, 0x5e, 0x7f, 0, 0x42]) }], fanout: 77, opts: {},
};

describe('packet', () => {
  it('its protocol as kept, bound to its interface; version and aux data first, membership and fanout once bound', () => {
    const p = packetPlan.plan(psk, ctx);
    expect(p.socket.family).toBe(17);
    expect(p.socket.protocol).toBe(0xb588);
    expect(p.socket.address!.readInt32LE(4)).toBe(1);
    expect(p.socket.sockopts.map((c) => [c.level, c.name, !!c.late])).toEqual([[263, 10, false], [263, 8, false], [263, 1, true], [263, 18, true]]);
    const mr = p.socket.sockopts[2]!.value;
    expect([mr.readInt32LE(0), mr.readUInt16LE(4), mr.readUInt16LE(6), ...mr.subarray(8, 14)]).toEqual([1, 0, 6, 1, 0, 0x5e, 0x7f, 0, 0x42]);
    expect(p.socket.sockopts[3]!.value.readUInt32LE(0)).toBe(77);
  });

  it('no fanout (CRIU\'s default 0xffffffff) and no interface: neither set', () => {
    const p = packetPlan.plan({ ...psk, ifindex: 0, fanout: 0xffffffff, mclist: [] }, ctx);
    expect(p.socket.address).toBeUndefined();
    expect(p.socket.sockopts.some((c) => c.name === 18)).toBe(false);
  });

  it('rings: set again once bound, after the memberships and before the fanout group, as struct tpacket_req3', () => {
    const rx_ring = { block_size: 8192, block_nr: 4, frame_size: 0, frame_nr: 0, retire_tmo: 10, sizeof_priv: 16, features: 0 };
    const tx_ring = { block_size: 4096, block_nr: 2, frame_size: 2048, frame_nr: 4, retire_tmo: 0, sizeof_priv: 0, features: 0 };
    const p = packetPlan.plan({ ...psk, version: 2, rx_ring, tx_ring }, ctx);
    expect(p.socket.sockopts.map((c) => [c.name, !!c.late])).toEqual([[10, false], [8, false], [1, true], [5, true], [13, true], [18, true]]);
    const req = (b: Buffer) => Array.from({ length: 7 }, (_, i) => b.readUInt32LE(i * 4));
    expect(req(p.socket.sockopts[3]!.value)).toEqual([8192, 4, 0, 0, 10, 16, 0]);
    expect(req(p.socket.sockopts[4]!.value)).toEqual([4096, 2, 2048, 4, 0, 0, 0]);
  });

  it('SOCK_PACKET: bound to its interface by name (struct sockaddr, the name in sa_data), its socket options only; unbound without an address', () => {
    const p = packetPlan.plan({ id: 19, type: 10, protocol: 0xb588, flags: 2, ifindex: 1, fown: {}, opts: { so_sndbuf: 4096 } }, ctx);
    expect(p.type).toBe(10);
    expect(p.socket.protocol).toBe(0xb588);
    const a = p.socket.address!;
    expect(a).toHaveLength(16);
    expect(a.readUInt16LE(0)).toBe(17);
    expect(a.subarray(2).toString('latin1').replace(/\0+$/, '')).toBe('lo'); // interface 1: loopback
    expect(p.socket.sockopts.some((c) => c.level === 263)).toBe(false);
    expect(packetPlan.plan({ id: 19, type: 10, protocol: 0xb588, flags: 2, ifindex: 0, fown: {}, opts: {} }, ctx).socket.address).toBeUndefined();
  });

  it('a type other than SOCK_RAW, SOCK_DGRAM or SOCK_PACKET is refused with exit 4', () => {
    let err: unknown;
    try {
      packetPlan.plan({ ...psk, type: 1 }, ctx);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(4);
  });
});
