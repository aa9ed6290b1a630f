/** Packet sockets: crit shows them by type and interface. */
import { named, num, SOCK_TYPES, type CritRecord, type SocketView, type ViewKind } from '../../view/kind.js';


export const packetView: ViewKind = {
  type: 'PACKETSK',
  field: 'psk',
  socket: (p: CritRecord): SocketView => ({ kind: 'packet', ino: num(p.ino), type: named(SOCK_TYPES, p.type), local: `ifindex ${num(p.ifindex)}` }),
};
