/**
 * IPv4/IPv6 sockets this dump can take: a listening TCP socket, a TCP/UDP socket that is not
 * connected (bound or not), and, with --tcp-established, an established TCP connection, read
 * through TCP_REPAIR behind the network lock (tcp-stream-<ino>.img); with --tcp-close one is
 * written without its stream, to come back closed. Claims every socket the unix kind did not:
 * what is not one of these is refused here, by name.
 */
import { CrtoolsError, ExitCode } from '@crtools/common';
import { listenBacklog, listenPending, socketInfo, type SocketInfo } from '@crtools/sys';
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE, namesOf } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { fown, inodeOf, refuseFd, unsupported, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';
import { tcpStateOf, type TcpRepairs } from './repair.js';

const STATE_NAMES = namesOf(TCP_STATE);

/** What the dump was asked about TCP connections (CRIU's options of the same names). */
export interface InetDumpOptions {
  /** --tcp-established: carry established connections */
  tcpEstablished?: boolean;
  /** --tcp-close: write connections to come back closed (no stream kept) */
  tcpClose?: boolean;
  /** --skip-in-flight: dump a listener whose accept queue is not empty (those connections are lost) */
  skipInFlight?: boolean;
  /** the connections put in repair mode (absent: a preflight, which only checks) */
  repairs?: TcpRepairs;
}

function inetSocket(pid: number, rec: FdRecord): SocketInfo {
  let s: SocketInfo;
  try {
    s = socketInfo(pid, rec.fd);
  } catch {
    throw unsupported(pid, rec.fd, rec.target);
  }
  const tcp = s.type === SOCK_TYPE.STREAM && s.protocol === IPPROTO.TCP;
  const udp = s.type === SOCK_TYPE.DGRAM && s.protocol === IPPROTO.UDP;
  if ((s.domain !== AF.INET && s.domain !== AF.INET6) || !(tcp || udp) || !s.local || (s.peer !== null && !tcp)) throw unsupported(pid, rec.fd, rec.target);
  return s;
}

/** A sockaddr_in/in6's port and address as CRIU keeps them (address as raw 32-bit words). */
export function sockaddrParts(sa: Buffer): { port: number; addr: number[] } {
  const port = sa.readUInt16BE(2);
  if (sa.readUInt16LE(0) === AF.INET) return { port, addr: [sa.readUInt32LE(4)] };
  return { port, addr: [0, 1, 2, 3].map((i) => sa.readUInt32LE(8 + 4 * i)) };
}

/** `addr:port` of a raw sockaddr, for messages. */
function text(sa: Buffer): string {
  const { port } = sockaddrParts(sa);
  if (sa.readUInt16LE(0) === AF.INET) return `${[4, 5, 6, 7].map((i) => sa[i]).join('.')}:${port}`;
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => sa.readUInt16BE(8 + 2 * i).toString(16));
  return `[${groups.join(':')}]:${port}`;
}

function inetEntry(id: number, flags: number, ino: number, s: SocketInfo, opts: Entry, conn?: { state: number; backlog: number; tcpOpts?: Entry }): Entry {
  const { port, addr } = sockaddrParts(s.local!);
  const peer = s.peer ? sockaddrParts(s.peer) : { port: 0, addr: s.domain === AF.INET ? [0] : [0, 0, 0, 0] };
  const isk: Entry = {
    id, ino, family: s.domain, type: s.type, proto: s.protocol, state: conn ? conn.state : s.listening ? TCP_STATE.LISTEN : TCP_STATE.CLOSE,
    src_port: port, dst_port: peer.port, flags, backlog: conn ? conn.backlog : s.listening ? listenBacklog(s.domain, ino) : 0,
    src_addr: addr, dst_addr: peer.addr, fown: fown(),
    opts,
  };
  if (s.domain === AF.INET6) isk['v6only'] = s.v6only;
  if (conn?.tcpOpts) isk['tcp_opts'] = conn.tcpOpts;
  return { type: 'INETSK', id, isk };
}

export class InetSockets implements DumpKind {
  /** tcp-stream-<ino>.img of each connection dumped */
  private readonly streams: DumpImage[] = [];

  constructor(private readonly o: InetDumpOptions = {}) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (!/^socket:\[\d+\]$/.test(rec.target)) return undefined;
    const s = inetSocket(pid, rec);
    const ino = inodeOf(rec.target);
    if (s.peer) return this.connection(pid, rec, flags, s, ino);
    if (s.protocol === IPPROTO.TCP && !s.listening) {
      // not connected by getpeername, yet maybe on its way (SYN_SENT) or torn down half-way
      const state = tcpStateOf(pid, rec.fd);
      if (state !== TCP_STATE.CLOSE) {
        throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd} (${rec.target}): TCP socket ${text(s.local!)} is in state ${STATE_NAMES[state] ?? state}, which crtools does not carry yet`, {
          context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
        });
      }
    }
    if (s.listening) {
      const pending = listenPending(s.domain, ino);
      if (pending && !this.o.skipInFlight) {
        throw refuseFd(pid, rec.fd, `listening TCP socket ${text(s.local!)} has ${pending} connection(s) not accepted yet (in flight); dump with --skip-in-flight to leave them out`, rec.target);
      }
    }
    const { opts } = readSocketOptions(pid, rec.fd);
    return { type: 'INETSK', key: rec.target, entry: (id) => inetEntry(id, flags, ino, s, opts) };
  }

  /** A connected TCP socket: its state checked, then (a dump) locked and read in repair mode. */
  private connection(pid: number, rec: FdRecord, flags: number, s: SocketInfo, ino: number): FdClaim {
    const what = `TCP connection ${text(s.local!)} -> ${text(s.peer!)}`;
    if (!this.o.tcpEstablished && !this.o.tcpClose) {
      throw refuseFd(pid, rec.fd, `${what} is established; dump with --tcp-established to carry it (or --tcp-close to restore it closed)`, rec.target);
    }
    const repairs = this.o.repairs;
    const state = tcpStateOf(pid, rec.fd);
    if (state !== TCP_STATE.ESTABLISHED) {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd} (${rec.target}): ${what} is in state ${STATE_NAMES[state] ?? state}, which crtools does not carry yet (only ESTABLISHED)`, {
        context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    const { opts, tcpOpts } = readSocketOptions(pid, rec.fd, true);
    const local = sockaddrParts(s.local!);
    const peer = sockaddrParts(s.peer!);
    const conn = { family: s.domain, src: local.addr, sport: local.port, dst: peer.addr, dport: peer.port };
    return {
      type: 'INETSK', key: rec.target,
      entry: (id) => {
        if (this.o.tcpClose || !repairs) return inetEntry(id, flags, ino, s, opts, { state: TCP_STATE.ESTABLISHED, backlog: 0, tcpOpts });
        const st = repairs.take(pid, rec.fd, conn, !!opts['reuseaddr']);
        if (st.state !== TCP_STATE.ESTABLISHED) throw refuseFd(pid, rec.fd, `${what} moved to state ${STATE_NAMES[st.state] ?? st.state} while it was dumped`, rec.target);
        const tse: Entry = {
          inq_len: st.inqLen, inq_seq: st.inqSeq, outq_len: st.outqLen, outq_seq: st.outqSeq,
          opt_mask: st.optMask, snd_wscale: st.optMask & 4 ? st.sndWscale : 0, mss_clamp: st.mssClamp,
          unsq_len: st.unsqLen, extra: Buffer.concat([st.inq, st.outq]),
        };
        if (st.optMask & 4) tse['rcv_wscale'] = st.rcvWscale;
        if (st.optMask & 1) tse['timestamp'] = st.timestamp;
        if (st.window) Object.assign(tse, { snd_wl1: st.window[0], snd_wnd: st.window[1], max_window: st.window[2], rcv_wnd: st.window[3], rcv_wup: st.window[4] });
        this.streams.push({ file: `tcp-stream-${ino.toString(16)}.img`, magic: 'TCP_STREAM', entries: [tse] });
        return inetEntry(id, flags, ino, s, opts, { state: st.state, backlog: st.outqLen, tcpOpts });
      },
    };
  }

  images(): DumpImage[] {
    return this.streams;
  }
}
