/**
 * Packet sockets (AF_PACKET, SOCK_RAW or SOCK_DGRAM): protocol, bound interface, TPACKET
 * version, reserve, copy threshold, timestamp source, aux data, original device, vnet header,
 * loss, memberships, fanout group, socket options, as sock_diag describes them; SOCK_PACKET ones
 * (bound by device name) with their protocol, interface and socket options.
 * RX/TX rings (TPACKET_V1/V2/V3) are carried as a fresh ring is (ring.ts), set up and mapped (shared
 * or private) by the task that holds the socket, or not mapped: packetsk.img's rx_ring / tx_ring,
 * the mappings in mm.img (VMA_AREA_SOCKET), as CRIU 4.2 writes them. Refused by name: rings
 * holding packets or used before (ring.ts), a part of the rings mapped, pages of a private
 * mapping the task wrote, frames waiting to be read,
 * a membership added more than once (packetsk.img keeps one of each), a fanout group steered by
 * a BPF program, packet options packetsk.img has no field for.
 */
import { inSocketNamespace, packetSockets, readTaskMapped, type PacketRingDiag, type PacketSocketDiag } from '@crtools/sys';
import { AF, SOCK_TYPE } from '@crtools/images/facts';
import { pagemapRecords, readMaps, readPagemap, socketNetRow, type FdRecord } from '@crtools/procfs';
import { fown, inodeOf, refuseFd, socketNestedNet, socketOf, type DumpKind, type Entry, type FdClaim, type NestedNets } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';
import { ringBytes, ringRefusal } from './ring.js';

/** the options packet_sock_entry has a field for */
const KEPT = ['PACKET_VERSION', 'PACKET_RESERVE', 'PACKET_AUXDATA', 'PACKET_ORIGDEV', 'PACKET_VNET_HDR', 'PACKET_LOSS', 'PACKET_TIMESTAMP', 'PACKET_FANOUT'];
/** PACKET_FANOUT types whose steering program (PACKET_FANOUT_DATA) no query gives back */
const FANOUT_CBPF = 6;
const FANOUT_EBPF = 7;
/** PACKET_FANOUT_FLAG_UNIQUEID, in PACKET_FANOUT's value */
const FANOUT_FLAG_UNIQUEID = 0x2000 << 16;
/** packet_diag_info.pdi_flags */
const PDI = { AUXDATA: 2, ORIGDEV: 4, VNETHDR: 8, LOSS: 16 } as const;

function packetEntry(id: number, flags: number, d: PacketSocketDiag, opts: Entry): Entry {
  const psk: Entry = {
    id, type: d.type, protocol: d.protocol, flags, ifindex: d.ifindex, fown: fown(), opts,
    version: d.version, reserve: d.reserve, aux_data: !!(d.flags & PDI.AUXDATA), orig_dev: !!(d.flags & PDI.ORIGDEV),
    vnet_hdr: !!(d.flags & PDI.VNETHDR), loss: !!(d.flags & PDI.LOSS), timestamp: d.tstamp, copy_thresh: d.copyThresh,
    mclist: d.mclist.map((m) => ({ index: m.index, type: m.type, addr: m.addr })),
  };
  if (d.fanout !== undefined) psk['fanout'] = d.fanout;
  if (d.rxRing) psk['rx_ring'] = ringEntry(d.rxRing);
  if (d.txRing) psk['tx_ring'] = ringEntry(d.txRing);
  return { type: 'PACKETSK', id, psk };
}

/** packet_ring: the geometry PACKET_RX_RING / PACKET_TX_RING take again (struct tpacket_req3) */
function ringEntry(r: PacketRingDiag): Entry {
  return { block_size: r.blockSize, block_nr: r.blockNr, frame_size: r.frameSize, frame_nr: r.frameNr, retire_tmo: r.retireTmo, sizeof_priv: r.sizeofPriv, features: r.features };
}

/** How many pages of the task's private mapping [start, end) of a ring are copies of its own (written since it was mapped). */
function privateCopies(pid: number, start: bigint, end: bigint): number {
  let n = 0;
  // the ring's own pages show as file pages; a copy the task made by writing is anonymous
  for (const e of pagemapRecords(readPagemap(pid, start, end))) if ((e.present && !e.file) || e.swapped) n++;
  return n;
}

/**
 * Why the rings of socket `ino` (the task's descriptor `fd`) cannot be carried, or undefined: the
 * task's mappings of them must be whole (the kernel maps a socket's rings only whole, RX then TX,
 * from offset 0), shared or private without pages of the task's own (a private mapping of a ring
 * shows the ring's pages until the task writes one), and the rings as a fresh ring is (ring.ts),
 * read through a mapping of our own (the task may map them nowhere: rings set up and not mapped).
 */
function ringsRefusal(pid: number, fd: number, ino: number, d: PacketSocketDiag): string | undefined {
  const rings = `${d.rxRing ? 'an RX' : ''}${d.rxRing && d.txRing ? ' and ' : ''}${d.txRing ? 'a TX' : ''} ring`;
  const size = ringBytes(d.rxRing) + ringBytes(d.txRing);
  const maps = readMaps(pid).filter((v) => v.kind === 'socket' && v.ino === BigInt(ino));
  const part = maps.find((v) => v.pgoff !== 0n || v.end - v.start !== BigInt(size));
  if (part) return `with ${rings} mapped in part at ${part.start.toString(16)}-${part.end.toString(16)} (the rings span ${size} bytes): not carried`;
  for (const v of maps.filter((m) => !m.shared)) {
    const own = privateCopies(pid, v.start, v.end);
    if (own) return `with ${rings} mapped private at ${v.start.toString(16)}-${v.end.toString(16)} where the task wrote ${own} pages (copies of its own, which a restore mapping the rings again does not make): not carried`;
  }
  let mem: Buffer;
  try {
    mem = readTaskMapped(pid, fd, size);
  } catch (e) {
    return `with ${rings} that cannot be read (${(e as Error).message}): not carried`;
  }
  const rx = d.rxRing && ringRefusal(mem.subarray(0, ringBytes(d.rxRing)), d.rxRing, d.version, false);
  const tx = d.txRing && ringRefusal(mem.subarray(ringBytes(d.rxRing)), d.txRing, d.version, true);
  if (rx) return `with an ${rx}`;
  return tx ? `with a ${tx}` : undefined;
}

export class PacketFiles implements DumpKind {
  /** sock_diag's view of each network namespace ('' the root's, else its path), read once per dump at its first packet socket */
  private readonly diag = new Map<string, Map<number, PacketSocketDiag>>();

  /** nets: the tree's network namespaces below its root's (a socket made in one is looked up there) */
  constructor(private readonly nets?: NestedNets) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const s = socketOf(pid, rec);
    if (!s) return undefined;
    if (s.domain !== AF.PACKET) return undefined;
    const ino = inodeOf(rec.target);
    const refuse = (why: string) => refuseFd(pid, rec.fd, `packet socket ${why}`, rec.target);
    // one made in a namespace below the root's: asked of sock_diag there, its table read through
    // a task living there, its entry with that namespace's id (the restore makes it in there)
    const net = socketNestedNet(pid, rec, this.nets);
    const key = net?.path ?? '';
    let diag = this.diag.get(key);
    if (!diag) {
      diag = new Map(inSocketNamespace(net?.path, () => packetSockets()).map((d) => [d.ino, d]));
      this.diag.set(key, diag);
    }
    const d = diag.get(ino);
    if (!d) throw refuse('not found by sock_diag (another network namespace?): not supported');
    const rowPid = net?.pid ?? pid;
    const withNs = (c: FdClaim): FdClaim => (net ? { ...c, entry: (id, fl) => {
      const e = c.entry(id, fl);
      return { ...e, psk: { ...(e['psk'] as Entry), ns_id: net.id } };
    } } : c);
    if (s.type === SOCK_TYPE.PACKET) {
      // (the restore names its interface as the restoring process's namespace knows it)
      if (net && d.ifindex) throw refuse(`of type SOCK_PACKET bound to interface ${d.ifindex} of the network namespace task ${net.pid} lives in (below the root's): not carried by crtools yet (crtools issue 17)`);
      return withNs(this.spkt(pid, rec, flags, d, refuse, rowPid));
    }
    if (d.rxRing || d.txRing) {
      const why = ringsRefusal(pid, rec.fd, ino, d);
      if (why) throw refuse(why);
    }
    // a fanout group steered by a BPF program (PACKET_FANOUT_DATA): the program cannot be read back
    const fanoutType = d.fanout === undefined ? -1 : (d.fanout >>> 16) & 0xff;
    if (fanoutType === FANOUT_CBPF || fanoutType === FANOUT_EBPF) throw refuse(`in fanout group ${d.fanout! & 0xffff} steered by a ${fanoutType === FANOUT_CBPF ? 'classic' : 'e'}BPF program: the program cannot be read back`);
    const twice = d.mclist.find((m) => m.count !== 1);
    if (twice) throw refuse(`with membership type ${twice.type} on interface ${twice.index} added ${twice.count} times: packetsk.img keeps one`);
    const row = socketNetRow(rowPid, ino);
    if (row && row.receive > 0) throw refuse(`with frames queued to be read (${row.receive} bytes of receive buffer): not carried`);
    const { opts, raw } = readSocketOptions(pid, rec.fd, KEPT);
    // the group as PACKET_FANOUT answers it: with its flags (rollover, defrag...), which
    // sock_diag leaves out; a unique id asked of the kernel is set again as that id
    const fanout = raw.get('PACKET_FANOUT');
    const group = d.fanout !== undefined && Buffer.isBuffer(fanout) ? (fanout.readUInt32LE(0) & ~FANOUT_FLAG_UNIQUEID) >>> 0 : d.fanout;
    return withNs({ type: 'PACKETSK', key: rec.target, entry: (id) => packetEntry(id, flags, { ...d, fanout: group }, opts) });
  }

  /**
   * A SOCK_PACKET socket (the old interface, bound by device name): its protocol, the interface
   * it is bound to (sock_diag's index; made again by name) and its socket options, as CRIU 4.2
   * keeps it. It has no packet options, rings nor memberships to take; frames waiting to be read
   * are refused as for the others.
   */
  private spkt(pid: number, rec: FdRecord, flags: number, d: PacketSocketDiag, refuse: (why: string) => Error, rowPid = pid): FdClaim {
    const row = socketNetRow(rowPid, d.ino);
    if (row && row.receive > 0) throw refuse(`of type SOCK_PACKET with frames queued to be read (${row.receive} bytes of receive buffer): not carried`);
    const { opts } = readSocketOptions(pid, rec.fd);
    return {
      type: 'PACKETSK', key: rec.target,
      // (the entry's packet fields as sock_diag gives them: a SOCK_PACKET socket has none set)
      entry: (id) => packetEntry(id, flags, d, opts),
    };
  }
}
