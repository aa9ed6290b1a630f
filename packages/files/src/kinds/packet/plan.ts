/**
 * Packet sockets made again: options, bound to their interface, memberships, their rings (the
 * same geometry: the task maps them again at the same address, see the restorer's socket areas),
 * then the fanout group. A SOCK_PACKET one: bound to its interface by name, its socket options.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { AF, PACKET_NO_FANOUT, SOCK_TYPE } from '@crtools/images/facts';
import { refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { allSockoptCalls, i32, type SockoptCall, type SocketFilePlan } from '../../sockopts/plan.js';

const SOL_PACKET = 263;
const PACKET = { ADD_MEMBERSHIP: 1, RX_RING: 5, COPY_THRESH: 7, TX_RING: 13, AUXDATA: 8, ORIGDEV: 9, VERSION: 10, RESERVE: 12, LOSS: 14, VNET_HDR: 15, TIMESTAMP: 17, FANOUT: 18 } as const;

/**
 * The name of interface `ifindex` (its /sys/class/net entry: the restoring process's network
 * namespace; a tree's own namespace has loopback only, index 1 there as here), or undefined.
 */
function interfaceName(ifindex: number): string | undefined {
  for (const name of readdirSync('/sys/class/net')) {
    try {
      if (Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim()) === ifindex) return name;
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

/** struct sockaddr_ll bound to an interface (the protocol is the socket's own) */
function sockaddrLl(ifindex: number): Buffer {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF.PACKET, 0);
  a.writeInt32LE(ifindex, 4);
  return a;
}

/**
 * packet_ring as PACKET_RX_RING / PACKET_TX_RING take it: struct tpacket_req3 (the kernel reads
 * its first four words for TPACKET_V1/V2, all seven for V3)
 */
function tpacketReq(r: Obj): Buffer {
  const b = Buffer.alloc(28);
  ['block_size', 'block_nr', 'frame_size', 'frame_nr', 'retire_tmo', 'sizeof_priv', 'features'].forEach((f, i) => b.writeUInt32LE(Number(r[f] ?? 0) >>> 0, i * 4));
  return b;
}

/** packet_sock_entry back into the calls that give a new socket its settings */
export function packetCalls(k: Obj, ctx: PlanContext): SockoptCall[] {
  const out: SockoptCall[] = [];
  const set = (name: number, v: number, late = false) => out.push({ level: SOL_PACKET, name, value: i32(v), late });
  const num = (v: unknown) => Number(v ?? 0);
  if (num(k.version)) set(PACKET.VERSION, num(k.version));
  if (num(k.reserve)) set(PACKET.RESERVE, num(k.reserve));
  if (num(k.timestamp)) set(PACKET.TIMESTAMP, num(k.timestamp));
  if (num(k.copy_thresh)) set(PACKET.COPY_THRESH, num(k.copy_thresh));
  if (k.aux_data) set(PACKET.AUXDATA, 1);
  if (k.orig_dev) set(PACKET.ORIGDEV, 1);
  if (k.vnet_hdr) set(PACKET.VNET_HDR, 1);
  if (k.loss) set(PACKET.LOSS, 1);
  for (const m of (k.mclist ?? []) as Obj[]) {
    const addr = Buffer.from((m.addr ?? Buffer.alloc(0)) as Uint8Array);
    // struct packet_mreq: ifindex, type, address length, address (8 bytes here)
    if (addr.length > 8) throw refuse(`${ctx.what}: packet membership address of ${addr.length} bytes`);
    const mr = Buffer.alloc(16);
    mr.writeInt32LE(num(m.index), 0);
    mr.writeUInt16LE(num(m.type), 4);
    mr.writeUInt16LE(addr.length, 6);
    addr.copy(mr, 8);
    out.push({ level: SOL_PACKET, name: PACKET.ADD_MEMBERSHIP, value: mr, late: true });
  }
  // the rings once the version is set and the socket bound (a ring fixes the version and reserve)
  if (k.rx_ring) out.push({ level: SOL_PACKET, name: PACKET.RX_RING, value: tpacketReq(k.rx_ring as Obj), late: true });
  if (k.tx_ring) out.push({ level: SOL_PACKET, name: PACKET.TX_RING, value: tpacketReq(k.tx_ring as Obj), late: true });
  if (k.fanout !== undefined && num(k.fanout) !== PACKET_NO_FANOUT) set(PACKET.FANOUT, num(k.fanout), true);
  return out;
}

export const packetPlan: PlanKind<SocketFilePlan> = {
  type: 'PACKETSK',
  field: 'psk',
  plan(k: Obj, ctx: PlanContext): SocketFilePlan {
    const type = Number(k.type);
    const o = (k.opts ?? {}) as Obj;
    const ifindex = Number(k.ifindex ?? 0);
    if (type === SOCK_TYPE.PACKET) {
      // the old interface: bound by the device's name (struct sockaddr: family, name in sa_data)
      let address: Buffer | undefined;
      if (ifindex) {
        const name = interfaceName(ifindex);
        if (name === undefined) throw refuse(`${ctx.what}: a SOCK_PACKET socket bound to interface ${ifindex}, which this network namespace does not have`);
        address = Buffer.alloc(16);
        address.writeUInt16LE(AF.PACKET, 0);
        address.write(name.slice(0, 13), 2, 'latin1');
      }
      return {
        kind: 'socket', flags: Number(k.flags), pos: 0n, type,
        socket: { family: AF.PACKET, protocol: Number(k.protocol ?? 0), sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0), address, sockopts: allSockoptCalls(o) },
      };
    }
    if (type !== SOCK_TYPE.RAW && type !== SOCK_TYPE.DGRAM) throw refuse(`${ctx.what}: packet socket of type ${type} is not restored`);
    return {
      kind: 'socket', flags: Number(k.flags), pos: 0n, type,
      socket: {
        family: AF.PACKET, protocol: Number(k.protocol ?? 0), sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0),
        address: ifindex ? sockaddrLl(ifindex) : undefined,
        sockopts: [...allSockoptCalls(o), ...packetCalls(k, ctx)],
      },
    };
  },
};
