/**
 * A packet socket's rings (PACKET_RX_RING / PACKET_TX_RING) as the task sees them through its
 * mapping, judged for what a restore can give back. A restore sets the rings up again with the
 * same geometry (packetsk.img's packet_ring) and maps them at the same address, but the kernel's
 * new rings start empty with their cursor on the first frame (or block): the kernel's place in a
 * ring is kept nowhere a restore could set it, and packets in the ring would be gone. So only
 * rings in the state a fresh ring is in are carried — never written by the kernel nor by the task
 * (a TPACKET_V3 RX ring: its first block opened by the kernel, empty); every other state is named:
 * frames holding packets not yet read, frames queued to be sent, and a ring that has carried
 * packets (whose cursor may stand anywhere).
 */
import type { PacketRingDiag } from '@crtools/sys';

/** PACKET_VERSION values */
export const TPACKET = { V1: 0, V2: 1, V3: 2 } as const;
/** struct tpacket_block_desc: its header's length (BLK_HDR_LEN) */
const BLOCK_HDR_LEN = 48;

/** The bytes a ring spans in the mapping: its blocks, end to end. */
export function ringBytes(r: PacketRingDiag | undefined): number {
  return r ? r.blockSize * r.blockNr : 0;
}

/** Where frame i of a frame-based ring starts: frames fill each block from its start, none across two. */
function frameAt(r: PacketRingDiag, i: number): number {
  const perBlock = Math.floor(r.blockSize / r.frameSize);
  return Math.floor(i / perBlock) * r.blockSize + (i % perBlock) * r.frameSize;
}

/** A frame's status word: tpacket_hdr's is an unsigned long (8 bytes, whose low half is read), the others' a u32. */
function frameStatus(mem: Buffer, at: number, version: number): number {
  // tpacket3_hdr (V3 TX frames): next offset, sec, nsec, snaplen, len, then the status
  return mem.readUInt32LE(at + (version === TPACKET.V3 ? 20 : 0));
}

function allZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Why the ring in `mem` (its bytes in the mapping) cannot be carried, or undefined when it is as
 * a fresh ring is. `tx`: the TX ring (frames the task queues for the kernel to send).
 */
export function ringRefusal(mem: Buffer, r: PacketRingDiag, version: number, tx: boolean): string | undefined {
  const which = tx ? 'TX ring' : 'RX ring';
  if (version === TPACKET.V3 && !tx) {
    // blocks: the kernel fills the one it has open, then hands it to the task (TP_STATUS_USER)
    let user = 0;
    let open = 0;
    for (let b = 0; b < r.blockNr; b++) {
      const at = b * r.blockSize;
      const status = mem.readUInt32LE(at + 8);
      const pkts = mem.readUInt32LE(at + 12);
      if (status & 1) user++;
      else if (pkts > 0) open = pkts;
    }
    if (user) return `${which} with ${user} of its ${r.blockNr} blocks holding packets not yet read (handed to the task, not given back): their packets are not carried`;
    if (open) return `${which} with ${open} packets in the block the kernel has open (not yet handed to the task): not carried`;
    // each block's private area (tp_sizeof_priv bytes after its header) is the task's to write
    for (let b = 0; b < r.blockNr && r.sizeofPriv; b++) {
      const at = b * r.blockSize + BLOCK_HDR_LEN;
      if (!allZero(mem.subarray(at, at + r.sizeofPriv))) return `${which} whose blocks' private areas (${r.sizeofPriv} bytes each) hold data: not carried`;
    }
    // as the kernel leaves a new ring: block 0 opened (sequence 1, no packets), nothing else written
    const first = mem.subarray(0, r.blockSize);
    const fresh = first.readBigUInt64LE(24) === 1n && allZero(first.subarray(BLOCK_HDR_LEN)) && allZero(mem.subarray(r.blockSize, ringBytes(r)));
    return fresh ? undefined : `${which} that has carried packets (block sequence ${first.readBigUInt64LE(24)}): the kernel's place in it cannot be set again`;
  }
  let held = 0;
  for (let i = 0; i < r.frameNr; i++) if (frameStatus(mem, frameAt(r, i), version) !== 0) held++;
  if (held) {
    return tx ? `${which} with ${held} of its ${r.frameNr} frames queued to be sent (or failed to): not carried`
      : `${which} with ${held} of its ${r.frameNr} frames holding packets not yet read: not carried`;
  }
  return allZero(mem.subarray(0, ringBytes(r))) ? undefined
    : `${which} that has ${tx ? 'sent' : 'carried'} packets: the kernel's place in it cannot be set again`;
}
