/** Netlink sockets: not dumped or restored yet; crit shows them in CRIU's images. */
import { num, type CritRecord, type SocketView, type ViewKind } from '../../view/kind.js';

export const netlinkView: ViewKind = {
  type: 'NETLINKSK',
  field: 'nlsk',
  socket: (n: CritRecord): SocketView => ({ kind: 'netlink', ino: num(n.ino), type: `proto ${num(n.protocol)}`, local: `portid ${num(n.portid)}`, peer: `portid ${num(n.dst_portid)}` }),
};
