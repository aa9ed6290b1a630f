import { named, num, SOCK_TYPES, TCP_STATES, type CritRecord, type SocketView, type ViewKind } from '../../view/kind.js';


export const unixView: ViewKind = {
  type: 'UNIXSK',
  field: 'usk',
  name: (u: CritRecord) => `unix[${num(u.ino)} (${num(u.peer)})${u.name ? ' ' + String(u.name) : ''}]`,
  socket: (u: CritRecord): SocketView => ({
    kind: 'unix',
    ino: num(u.ino),
    type: named(SOCK_TYPES, u.type),
    state: named(TCP_STATES, u.state),
    local: u.name ? String(u.name) : '',
    peer: num(u.peer) ? `ino ${num(u.peer)}` : '',
  }),
};
