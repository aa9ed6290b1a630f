import { describe, expect, it } from 'vitest';
import { ringBytes, ringRefusal, TPACKET } from './ring.js';

const v2 = { blockSize: 4096, blockNr: 2, frameSize: 2048, frameNr: 4, retireTmo: 0, sizeofPriv: 0, features: 0 };
const v3 = { blockSize: 8192, blockNr: 3, frameSize: 2048, frameNr: 12, retireTmo: 10, sizeofPriv: 0, features: 0 };

/** a V3 RX ring as the kernel leaves it once set up: block 0 opened (sequence 1), nothing else */
function freshV3(): Buffer {
  const m = Buffer.alloc(ringBytes(v3));
  m.writeUInt32LE(2, 0);
  m.writeUInt32LE(48, 4);
  m.writeUInt32LE(48, 16);
  m.writeUInt32LE(48, 20);
  m.writeBigUInt64LE(1n, 24);
  m.writeUInt32LE(1733400000, 32);
  return m;
}

describe('packet rings', () => {
  it('a fresh frame ring (nothing written) and a fresh V3 RX ring are carried', () => {
    expect(ringRefusal(Buffer.alloc(ringBytes(v2)), v2, TPACKET.V2, false)).toBeUndefined();
    expect(ringRefusal(Buffer.alloc(ringBytes(v2)), v2, TPACKET.V1, true)).toBeUndefined();
    expect(ringRefusal(freshV3(), v3, TPACKET.V3, false)).toBeUndefined();
  });

  it('frames held by the task, or queued to be sent, are named with their count', () => {
    const m = Buffer.alloc(ringBytes(v2));
    // frame 3: block 1, second frame
    m.writeUInt32LE(1, 4096 + 2048);
    expect(ringRefusal(m, v2, TPACKET.V2, false)).toBe('RX ring with 1 of its 4 frames holding packets not yet read: not carried');
    expect(ringRefusal(m, v2, TPACKET.V2, true)).toBe('TX ring with 1 of its 4 frames queued to be sent (or failed to): not carried');
  });

  it('V3 TX frames: their status is tpacket3_hdr\'s (after next offset, time, lengths)', () => {
    const m = Buffer.alloc(ringBytes(v2));
    m.writeUInt32LE(1, 2048 + 20);
    expect(ringRefusal(m, v2, TPACKET.V3, true)).toBe('TX ring with 1 of its 4 frames queued to be sent (or failed to): not carried');
    m.writeUInt32LE(0, 2048 + 20);
    m.writeUInt32LE(64, 2048 + 16);
    expect(ringRefusal(m, v2, TPACKET.V3, true)).toBe('TX ring that has sent packets: the kernel\'s place in it cannot be set again');
  });

  it('a ring that has carried packets (all given back) is refused: the kernel\'s place in it is not known', () => {
    const m = Buffer.alloc(ringBytes(v2));
    m.writeUInt32LE(64, 4); // frame 0's length, its status given back (0)
    expect(ringRefusal(m, v2, TPACKET.V2, false)).toBe('RX ring that has carried packets: the kernel\'s place in it cannot be set again');
    expect(ringRefusal(m, v2, TPACKET.V2, true)).toBe('TX ring that has sent packets: the kernel\'s place in it cannot be set again');
  });

  it('V3: blocks handed to the task, packets in the open block, a ring turned on', () => {
    const held = freshV3();
    held.writeUInt32LE(1, 8);
    expect(ringRefusal(held, v3, TPACKET.V3, false)).toMatch(/^RX ring with 1 of its 3 blocks holding packets not yet read/);
    const open = freshV3();
    open.writeUInt32LE(2, 12);
    expect(ringRefusal(open, v3, TPACKET.V3, false)).toBe('RX ring with 2 packets in the block the kernel has open (not yet handed to the task): not carried');
    const turned = freshV3();
    turned.writeBigUInt64LE(4n, 24);
    expect(ringRefusal(turned, v3, TPACKET.V3, false)).toMatch(/^RX ring that has carried packets \(block sequence 4\)/);
    const priv = freshV3();
    priv[48 + 3] = 7;
    expect(ringRefusal(priv, { ...v3, sizeofPriv: 16 }, TPACKET.V3, false)).toBe('RX ring whose blocks\' private areas (16 bytes each) hold data: not carried');
    expect(ringRefusal(freshV3(), { ...v3, sizeofPriv: 16 }, TPACKET.V3, false)).toBeUndefined();
    const written = freshV3();
    written[8192 + 100] = 1;
    expect(ringRefusal(written, v3, TPACKET.V3, false)).toMatch(/^RX ring that has carried packets/);
  });
});
