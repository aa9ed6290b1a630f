import { AF, IPPROTO, namesOf } from '@crtools/images/facts';
import type { JsonValue } from '@crtools/images';
import { lower, named, num, SOCK_TYPES, TCP_STATES, type CritRecord, type SocketView, type ViewKind } from '../../view/kind.js';

const IP_PROTOS = lower(namesOf(IPPROTO, ['TCP', 'UDP', 'UDPLITE', 'ICMP', 'ICMPV6', 'RAW']));

/** An address from crit's u32 list (each u32 holds 4 bytes of the address in memory order). */
function ipAddr(words: JsonValue | undefined, family: number): string {
  if (!Array.isArray(words) || words.length === 0) return '*';
  if (typeof words[0] === 'string') return family === AF.INET6 ? `[${words.join(':')}]` : String(words[0]);
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(num(w) >>> 0, i * 4));
  if (family !== AF.INET6) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  return `[${parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]`;
}

export const inetView: ViewKind = {
  type: 'INETSK',
  field: 'isk',
  socket: (k: CritRecord): SocketView => {
    const family = num(k.family);
    return {
      kind: named(IP_PROTOS, k.proto) + (family === AF.INET6 ? '6' : ''),
      ino: num(k.ino),
      type: named(SOCK_TYPES, k.type),
      state: named(TCP_STATES, k.state),
      local: `${ipAddr(k.src_addr, family)}:${num(k.src_port)}`,
      peer: `${ipAddr(k.dst_addr, family)}:${num(k.dst_port)}`,
    };
  },
};
