/**
 * IPv4/IPv6 sockets this dump can take: a listening TCP socket, or a TCP/UDP socket that is
 * not connected (bound or not). Connected ones (TCP streams need TCP_REPAIR) are refused by name.
 * Claims every socket the unix kind did not: what is not one of these is refused here.
 */
import { listenBacklog, socketInfo, type SocketInfo } from '@crtools/sys';
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { fown, inodeOf, unsupported, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';

function inetSocket(pid: number, rec: FdRecord): SocketInfo {
  let s: SocketInfo;
  try {
    s = socketInfo(pid, rec.fd);
  } catch {
    throw unsupported(pid, rec.fd, rec.target);
  }
  const tcp = s.type === SOCK_TYPE.STREAM && s.protocol === IPPROTO.TCP;
  const udp = s.type === SOCK_TYPE.DGRAM && s.protocol === IPPROTO.UDP;
  if ((s.domain !== AF.INET && s.domain !== AF.INET6) || !(tcp || udp) || s.peer !== null || !s.local) throw unsupported(pid, rec.fd, rec.target);
  return s;
}

/** A sockaddr_in/in6's port and address as CRIU keeps them (address as raw 32-bit words). */
function sockaddrParts(sa: Buffer): { port: number; addr: number[] } {
  const port = sa.readUInt16BE(2);
  if (sa.readUInt16LE(0) === AF.INET) return { port, addr: [sa.readUInt32LE(4)] };
  return { port, addr: [0, 1, 2, 3].map((i) => sa.readUInt32LE(8 + 4 * i)) };
}

function inetEntry(id: number, flags: number, ino: number, s: SocketInfo, opts: Entry): Entry {
  const { port, addr } = sockaddrParts(s.local!);
  const isk: Entry = {
    id, ino, family: s.domain, type: s.type, proto: s.protocol, state: s.listening ? TCP_STATE.LISTEN : TCP_STATE.CLOSE,
    src_port: port, dst_port: 0, flags, backlog: s.listening ? listenBacklog(s.domain, ino) : 0,
    src_addr: addr, dst_addr: s.domain === AF.INET ? [0] : [0, 0, 0, 0], fown: fown(),
    opts,
  };
  if (s.domain === AF.INET6) isk['v6only'] = s.v6only;
  return { type: 'INETSK', id, isk };
}

export const inetDump: DumpKind = {
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (!/^socket:\[\d+\]$/.test(rec.target)) return undefined;
    const s = inetSocket(pid, rec);
    const { opts } = readSocketOptions(pid, rec.fd);
    return { type: 'INETSK', key: rec.target, entry: (id) => inetEntry(id, flags, inodeOf(rec.target), s, opts) };
  },
};
