/**
 * Netlink sockets: protocol, bound portid, multicast groups (every one, from
 * NETLINK_LIST_MEMBERSHIPS), connected destination (portid, group), socket options.
 * Refused by name: messages waiting to be read (not carried: CRIU 4.2 refuses them too),
 * SOCK_DGRAM ones (netlinksk.img has no field for the type: restores make SOCK_RAW). The
 * SOL_NETLINK options (NETLINK_EXT_ACK, which iproute2 sets, among them) go into crtools' own
 * field nl_sockopts, which CRIU's format does not have.
 */
import { probeFile, type SocketInfo } from '@crtools/sys';
import { AF, NETLINK_STATE, SOCK_TYPE } from '@crtools/images/facts';
import { socketNetRow, type FdRecord } from '@crtools/procfs';
import { fown, inodeOf, refuseFd, socketNestedNet, socketOf, type DumpKind, type Entry, type FdClaim, type NestedNets } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';

const SOL_NETLINK = 270;
const NETLINK_LIST_MEMBERSHIPS = 9;
/** the on/off SOL_NETLINK options, by their number (netlink_sk_entry.nl_sockopts: bit N) */
export const NETLINK_FLAG_OPTIONS: Record<string, number> = {
  NETLINK_PKTINFO: 3, NETLINK_BROADCAST_ERROR: 4, NETLINK_NO_ENOBUFS: 5, NETLINK_LISTEN_ALL_NSID: 8,
  NETLINK_CAP_ACK: 10, NETLINK_EXT_ACK: 11, NETLINK_GET_STRICT_CHK: 12,
};

/** The groups the socket listens to, as 32-bit words of the bitmap, trailing zero words left out. */
function groupsOf(pid: number, fd: number): number[] {
  const b = probeFile(pid, fd, [{ level: SOL_NETLINK, name: NETLINK_LIST_MEMBERSHIPS, length: 1024 }]).sockopts[0];
  if (!Buffer.isBuffer(b)) return [];
  const words = Array.from({ length: b.length >> 2 }, (_, i) => b.readUInt32LE(4 * i));
  while (words.length && words[words.length - 1] === 0) words.pop();
  return words;
}

function netlinkEntry(id: number, flags: number, ino: number, s: SocketInfo, groups: number[], opts: Entry, nlSockopts: number): Entry {
  const portid = s.local && s.local.length >= 12 ? s.local.readUInt32LE(4) : 0;
  const dstPortid = s.peer && s.peer.length >= 12 ? s.peer.readUInt32LE(4) : 0;
  const dstMask = s.peer && s.peer.length >= 12 ? s.peer.readUInt32LE(8) : 0;
  // the kernel answers the destination group as a mask of that one group
  const dstGroup = dstMask ? 32 - Math.clz32(dstMask & -dstMask) : 0;
  const nlsk: Entry = {
    id, ino, protocol: s.protocol, state: dstPortid || dstGroup ? NETLINK_STATE.CONNECTED : NETLINK_STATE.UNCONNECTED,
    flags, portid, groups, dst_portid: dstPortid, dst_group: dstGroup, fown: fown(), opts,
    ...(nlSockopts ? { nl_sockopts: nlSockopts } : {}),
  };
  return { type: 'NETLINKSK', id, nlsk };
}

/** Netlink sockets; `nets`: the tree's network namespaces below its root's (a socket made in one is written with its id). */
export const netlinkFiles = (nets?: NestedNets): DumpKind => ({
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const s = socketOf(pid, rec);
    if (!s) return undefined;
    if (s.domain !== AF.NETLINK) return undefined;
    // one made in a namespace below the root's: its table read through a task living there, its
    // entry with that namespace's id (the restore makes it in there)
    const net = socketNestedNet(pid, rec, nets);
    if (s.type !== SOCK_TYPE.RAW) throw refuseFd(pid, rec.fd, `netlink socket of type ${s.type} (not SOCK_RAW): netlinksk.img has no field for its type`, rec.target);
    const ino = inodeOf(rec.target);
    const row = socketNetRow(net?.pid ?? pid, ino);
    if (row && row.receive > 0) throw refuseFd(pid, rec.fd, `netlink socket with messages queued to be read (${row.receive} bytes of receive buffer): not carried`, rec.target);
    const { opts, raw } = readSocketOptions(pid, rec.fd, ['NETLINK_LIST_MEMBERSHIPS', ...Object.keys(NETLINK_FLAG_OPTIONS)]);
    let nlSockopts = 0;
    for (const [name, n] of Object.entries(NETLINK_FLAG_OPTIONS)) {
      const v = raw.get(name);
      if (Buffer.isBuffer(v) && v.length >= 4 && v.readInt32LE(0) !== 0) nlSockopts |= 1 << n;
    }
    const groups = groupsOf(pid, rec.fd);
    return {
      type: 'NETLINKSK', key: rec.target,
      entry: (id) => {
        const e = netlinkEntry(id, flags, ino, s, groups, opts, nlSockopts);
        return net ? { ...e, nlsk: { ...(e['nlsk'] as Entry), ns_id: net.id } } : e;
      },
    };
  },
});
