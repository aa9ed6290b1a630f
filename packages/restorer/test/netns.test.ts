import { describe, expect, it } from 'vitest';
import { withoutLinkStateFlags } from '../src/netns.js';

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
