/**
 * IPv4/IPv6 sockets this dump can take: a listening TCP socket, a TCP socket that is not
 * connected, with --tcp-established an established TCP connection, read through TCP_REPAIR
 * behind the network lock (tcp-stream-<ino>.img; with --tcp-close one is written without its
 * stream, to come back closed), UDP and UDP-lite sockets (bound or not, connected or not), ping
 * sockets (SOCK_DGRAM with IPPROTO_ICMP/ICMPV6) and raw sockets, with the IP options CRIU's
 * ip_opts_entry keeps, and how a UDP socket or TCP connection was shut down. Half-closed
 * connections (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING) are carried like established
 * ones, their state in the entry, and so are connects under way (SYN_SENT, the peer from
 * SO_PEERNAME: getpeername(2) has none yet). A TCP socket with no connection going on (never connected,
 * or one whose connection ended while held: CLOSE) is written as CRIU 4.2 writes a plain
 * socket, to come back as a new one at its address. Refused by name: a TCP connection without
 * --tcp-established/--tcp-close, one being accepted (SYN_RECV, as CRIU 4.2), one that ended with bytes not read or an error not reported yet, a listener with connections not accepted yet (but with
 * --skip-in-flight), datagrams waiting in a queue (CRIU 4.2 drops them; we do not lose them
 * silently), any other protocol. Not seen: whether a ping or raw socket was shut down (no
 * sock_diag for ping sockets), nor a send side shut alone on a UDP socket never bound (in no
 * table: its poll events show the rest).
 */
import { CrtoolsError, ExitCode, isCrtoolsError } from '@crtools/common';
import { inSocketNamespace, inetShutdown, listenBacklog, listenPending, type SocketInfo } from '@crtools/sys';
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE, namesOf } from '@crtools/images/facts';
import { socketNetRow, type FdRecord } from '@crtools/procfs';
import { fown, inodeOf, refuseFd, socketNestedNet, socketOf, unsupported, type DumpImage, type DumpKind, type Entry, type FdClaim, type NestedNetRef, type NestedNets } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';
import { tcpIdleOf, tcpStateOf, type TcpRepairs } from './repair.js';

/** poll(2) revents bits */
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLRDHUP = 0x2000;

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

/** the IP options ip_opts_entry has a field for (by family; raw ones only on raw sockets) */
const IP_KEPT = ['IP_FREEBIND', 'IP_PKTINFO', 'IP_TOS', 'IP_TTL'];
// (IP_FREEBIND on an IPv6 socket is the same setting as IPV6_FREEBIND)
const IP6_KEPT = ['IPV6_FREEBIND', 'IP_FREEBIND', 'IPV6_RECVPKTINFO'];
const RAW_KEPT = ['IP_HDRINCL', 'IP_NODEFRAG', 'ICMP_FILTER'];
const RAW6_KEPT = ['IPV6_HDRINCL', 'ICMPV6_FILTER'];

/** What kind of IP socket this is, by type and protocol ('' when not one this dump takes). */
function ipKind(s: { domain: number; type: number; protocol: number }): string {
  if (s.type === SOCK_TYPE.STREAM && s.protocol === IPPROTO.TCP) return 'TCP';
  if (s.type === SOCK_TYPE.RAW) return 'raw';
  if (s.type !== SOCK_TYPE.DGRAM) return '';
  if (s.protocol === IPPROTO.UDP) return 'UDP';
  if (s.protocol === IPPROTO.UDPLITE) return 'UDP-lite';
  if (s.protocol === (s.domain === AF.INET ? IPPROTO.ICMP : IPPROTO.ICMPV6)) return 'ping';
  return '';
}

/** An IP socket's peer: its port and address as CRIU keeps them (address as raw 32-bit words). */
interface Endpoint {
  port: number;
  addr: number[];
}

/**
 * Checks an IP socket is one this dump takes (throws naming what is not); its peer, or null.
 * A TCP socket's peer is getpeername's (its connection is judged by InetSockets.connection).
 * Datagram, ping and raw sockets are asked of their /proc/PID/net table (getpeername says
 * nothing of a ping or raw socket connected to port 0), with what their queues hold.
 */
function checkInet(pid: number, rec: FdRecord, s: SocketInfo, rowPid = pid): { peer: Endpoint | null; unlisted?: boolean } {
  const kind = ipKind(s);
  if ((s.domain !== AF.INET && s.domain !== AF.INET6) || !kind || !s.local) throw unsupported(pid, rec.fd, rec.target);
  if (kind === 'TCP') return { peer: s.peer ? sockaddrParts(s.peer) : null };
  // (the table of the namespace the socket was made in: a task living there, `rowPid`)
  const row = socketNetRow(rowPid, inodeOf(rec.target));
  // a UDP or ping socket never bound nor connected is in no table (the kernel lists those it
  // hashed by port): it has no port, no peer, and nothing can have come to it (as CRIU 4.2
  // writes a socket sock_diag does not know: in CLOSE, unbound, its options read off the socket)
  if (!row && kind !== 'raw' && sockaddrParts(s.local).port === 0 && !s.peer) return { peer: null, unlisted: true };
  if (!row || row.state === undefined) throw refuseFd(pid, rec.fd, `${kind} socket not found in /proc/${pid}/net: its state cannot be read`, rec.target);
  // datagrams (or raw packets) that wait to be read or sent would be lost
  if (row.receive > 0) throw refuseFd(pid, rec.fd, `${kind} socket with data queued to be read (${row.receive} bytes of receive buffer): not carried`, rec.target);
  if (row.send > 0) throw refuseFd(pid, rec.fd, `${kind} socket with data queued to be sent (${row.send} bytes of send buffer): not carried`, rec.target);
  if (row.state === TCP_STATE.CLOSE) return { peer: null };
  if (row.state !== TCP_STATE.ESTABLISHED || !row.remote) throw refuseFd(pid, rec.fd, `${kind} socket in state ${row.state}: not supported`, rec.target);
  return { peer: { port: row.remote.port, addr: row.remote.words } };
}

/** A sockaddr_in/in6's port and address as CRIU keeps them (address as raw 32-bit words). */
export function sockaddrParts(sa: Buffer): Endpoint {
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

/** The IP options to keep for this socket (not refused by readSocketOptions). */
function keptOptions(s: SocketInfo): string[] {
  const v6 = s.domain === AF.INET6;
  return [...(v6 ? IP6_KEPT : IP_KEPT), ...(s.type === SOCK_TYPE.RAW ? (v6 ? RAW6_KEPT : RAW_KEPT) : [])];
}

/** ip_opts_entry: each field present when not zero (as CRIU writes it); raw sockets' part on raw sockets. */
function ipOpts(s: SocketInfo, raw: Map<string, Buffer | number | undefined>): Entry {
  const int = (name: string): number => {
    const v = raw.get(name);
    return Buffer.isBuffer(v) && v.length >= 4 ? v.readInt32LE(0) : 0;
  };
  const v6 = s.domain === AF.INET6;
  const o: Entry = {};
  const freebind = int('IP_FREEBIND') !== 0 || (v6 && int('IPV6_FREEBIND') !== 0);
  if (freebind) o['freebind'] = true;
  if (int(v6 ? 'IPV6_RECVPKTINFO' : 'IP_PKTINFO')) o['pktinfo'] = true;
  if (!v6 && int('IP_TOS')) o['tos'] = int('IP_TOS');
  if (!v6 && int('IP_TTL')) o['ttl'] = int('IP_TTL');
  if (s.type === SOCK_TYPE.RAW) {
    const r: Entry = {};
    if (int(v6 ? 'IPV6_HDRINCL' : 'IP_HDRINCL')) r['hdrincl'] = true;
    if (!v6 && int('IP_NODEFRAG')) r['nodefrag'] = true;
    const filter = raw.get(v6 ? 'ICMPV6_FILTER' : 'ICMP_FILTER');
    if (s.protocol === (v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP) && Buffer.isBuffer(filter)) {
      r['icmpv_filter'] = Array.from({ length: filter.length >> 2 }, (_, i) => filter.readUInt32LE(4 * i));
    }
    o['raw'] = r;
  }
  return o;
}

/** A TCP connection's part of its entry: its state, the backlog field CRIU fills with the send queue, tcp_opts_entry. */
interface TcpConnPart {
  state: number;
  backlog: number;
  tcpOpts?: Entry;
  /** sk_shutdown bits (1 receive, 2 send) from sock_diag */
  shutdown: number;
}

/**
 * The states of a connection this dump carries (as CRIU 4.2 does): established, half-closed and
 * being connected (SYN_SENT: its connect is made again on restore and goes on; one that ended,
 * CLOSE, is a plain socket: `idle`).
 */
const CARRIED_STATES = new Set<number>([TCP_STATE.SYN_SENT, TCP_STATE.ESTABLISHED, TCP_STATE.FIN_WAIT1, TCP_STATE.FIN_WAIT2, TCP_STATE.CLOSE_WAIT, TCP_STATE.LAST_ACK, TCP_STATE.CLOSING]);

const SHUTDOWN_NAMES = ['NONE', 'READ', 'WRITE', 'BOTH'];

function inetEntry(id: number, flags: number, ino: number, s: SocketInfo, connected: Endpoint | null, opts: Entry, ip: Entry, conn?: TcpConnPart, listenerTcpOpts?: Entry, unlistedEvents?: number): Entry {
  const { port, addr } = sockaddrParts(s.local!);
  const peer = connected ?? { port: 0, addr: s.domain === AF.INET ? [0] : [0, 0, 0, 0] };
  const state = conn ? conn.state : s.listening ? TCP_STATE.LISTEN : connected ? TCP_STATE.ESTABLISHED : TCP_STATE.CLOSE;
  const isk: Entry = {
    id, ino, family: s.domain, type: s.type, proto: s.protocol, state,
    src_port: port, dst_port: peer.port, flags, backlog: conn ? conn.backlog : s.listening ? listenBacklog(s.domain, ino) : 0,
    src_addr: addr, dst_addr: peer.addr, fown: fown(),
    opts,
  };
  if (s.domain === AF.INET6) isk['v6only'] = s.v6only;
  isk['ip_opts'] = ip;
  const tcpOpts = conn?.tcpOpts ?? listenerTcpOpts;
  if (tcpOpts) isk['tcp_opts'] = tcpOpts;
  // UDP and UDP-lite: how it was shut down (sock_diag), as CRIU keeps it; a TCP connection's was read before
  if (s.type === SOCK_TYPE.DGRAM && (s.protocol === IPPROTO.UDP || s.protocol === IPPROTO.UDPLITE)) {
    // (one sock_diag does not list, never bound: its poll events say it, but for a send side shut alone)
    const how = unlistedEvents === undefined ? inetShutdown(s.domain, s.protocol, ino) & 3
      : unlistedEvents & POLLHUP ? 3 : unlistedEvents & POLLRDHUP ? 1 : 0;
    if (how) isk['shutdown'] = SHUTDOWN_NAMES[how];
  }
  if (conn?.shutdown) isk['shutdown'] = SHUTDOWN_NAMES[conn.shutdown];
  return { type: 'INETSK', id, isk };
}

export class InetSockets implements DumpKind {
  /** tcp-stream-<ino>.img of each connection dumped */
  private readonly streams: DumpImage[] = [];

  /** nets: the tree's network namespaces below its root's */
  constructor(private readonly o: InetDumpOptions = {}, private readonly nets?: NestedNets) {}

  /** the namespace below the root's of the socket being claimed (undefined: the root's) */
  private net: NestedNetRef | undefined;

  /**
   * A socket made in a network namespace below the root's is looked up there (sock_diag, its
   * /proc/PID/net table through a task living there), its entry written with that namespace's
   * id; a TCP connection there is locked and read in repair mode there, as the root's are.
   */
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const s = socketOf(pid, rec);
    if (!s) return undefined;
    // netlink and packet sockets are theirs
    if (s.domain !== AF.INET && s.domain !== AF.INET6) return undefined;
    const net = socketNestedNet(pid, rec, this.nets);
    // one made in a network namespace of no task of the tree would be made in the root's
    if (!net && this.nets?.root !== undefined && s.netns && BigInt(s.netns) !== this.nets.root) {
      throw refuseFd(pid, rec.fd, `IP socket made in a network namespace no task of the tree lives in (net:[${s.netns}]): it would come back in the root's, which is not supported`, rec.target);
    }
    if (!net) return this.claimIn(pid, rec, flags, s);
    this.net = net;
    try {
      const c = inSocketNamespace(net.path, () => this.claimIn(pid, rec, flags, s, net.pid));
      return {
        ...c,
        entry: (id, fl) => {
          const e = inSocketNamespace(net.path, () => c.entry(id, fl));
          return { ...e, isk: { ...(e['isk'] as Entry), ns_id: net.id } };
        },
      };
    } finally {
      this.net = undefined;
    }
  }

  private claimIn(pid: number, rec: FdRecord, flags: number, s: SocketInfo, rowPid = pid): FdClaim {
    const { peer, unlisted } = checkInet(pid, rec, s, rowPid);
    const ino = inodeOf(rec.target);
    const tcp = ipKind(s) === 'TCP';
    if (tcp && s.peer) return this.connection(pid, rec, flags, s, ino);
    if (tcp && !s.listening) return this.idle(pid, rec, flags, s, ino);
    if (tcp && s.listening) {
      const pending = listenPending(s.domain, ino);
      if (pending && !this.o.skipInFlight) {
        throw refuseFd(pid, rec.fd, `listening TCP socket ${text(s.local!)} has ${pending} connection(s) not accepted yet (in flight); dump with --skip-in-flight to leave them out`, rec.target);
      }
    }
    // a TCP listener's TCP_NODELAY, TCP_CORK and keepalive settings (servers set them on the
    // listener for the connections it accepts) go in its tcp_opts_entry, as CRIU writes them
    const { opts, raw, tcpOpts, events } = readSocketOptions(pid, rec.fd, keptOptions(s), tcp ? 'socket' : undefined);
    return { type: 'INETSK', key: rec.target, entry: (id) => inetEntry(id, flags, ino, s, peer, opts, ipOpts(s, raw), undefined, tcpOpts, unlisted ? events : undefined) };
  }

  /**
   * A TCP socket getpeername(2) calls not connected: one never connected (bound or not), or one
   * whose connection ended while the task held it (CLOSE after both FINs, or a reset). As CRIU
   * 4.2 writes the first, both are written as a plain socket in CLOSE (bound to its address if it
   * has one; its receiving side shut if it was: a read says EOF), made again as a new socket.
   * What that would lose is refused by name: bytes the task has not read, an error it was not
   * told yet (the reset), a connection being accepted (SYN_RECV). A connect under way
   * (SYN_SENT) is a connection (`connection`).
   */
  private idle(pid: number, rec: FdRecord, flags: number, s: SocketInfo, ino: number): FdClaim {
    const st = tcpIdleOf(pid, rec.fd);
    const peer = st.peer && st.peer.length >= 16 ? text(st.peer) : undefined;
    const what = `TCP socket ${text(s.local!)}${peer ? ` -> ${peer}` : ''}`;
    const refuse = (why: string): never => {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd} (${rec.target}): ${what} ${why}`, { context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED });
    };
    // a connect under way (its SYN sent, no answer yet): a connection, carried as CRIU 4.2 does
    if (st.state === TCP_STATE.SYN_SENT && st.peer && st.peer.length >= 16) return this.connection(pid, rec, flags, s, ino, st.peer);
    if (st.state !== TCP_STATE.CLOSE) {
      const how = st.state === TCP_STATE.SYN_RECV ? 'is being connected (SYN_RECV)' : `is in state ${STATE_NAMES[st.state] ?? st.state}`;
      refuse(`${how}: a connection being set up is not carried by crtools (nor by CRIU 4.2)`);
    }
    if (st.events & POLLERR) refuse('(CLOSE) holds an error the task was not told yet (a connection reset or refused, SO_ERROR): not carried');
    // a connection that ended, its peer known (SO_PEERNAME): as CRIU 4.2, read in repair mode,
    // made again as the connection it was and brought to CLOSE by its FINs (its addresses and
    // the bytes left to read kept)
    if (peer && this.o.repairs && !this.o.tcpClose) return this.connection(pid, rec, flags, s, ino, st.peer!, st.events & POLLRDHUP ? 1 : 0);
    if (st.inq > 0) refuse(`is a connection that ended (CLOSE) with ${st.inq} byte(s) the task has not read: not carried (the socket made again would not have them)`);
    // a connection that ended: what the kernel worked out for it (segment size, window clamp, an
    // accepted socket's multicast TTL) is no setting of the task's, as for an established one
    let read;
    try {
      read = readSocketOptions(pid, rec.fd, keptOptions(s), peer ? 'connection' : 'socket');
    } catch (e) {
      // never connected, yet with the segment size of a connection: a connect that failed
      // (refused, timed out) leaves it, and no field of the format keeps it
      if (!peer && isCrtoolsError(e) && /TCP_MAXSEG|TCP_WINDOW_CLAMP/.test(e.message)) refuse(`(CLOSE) is a socket whose connect failed (its segment size is a connection's, which the format cannot keep): not supported`);
      throw e;
    }
    const { opts, raw, tcpOpts } = read;
    const shutdown = st.events & POLLRDHUP ? 1 : 0;
    return {
      type: 'INETSK', key: rec.target,
      entry: (id) => inetEntry(id, flags, ino, s, null, opts, ipOpts(s, raw), { state: TCP_STATE.CLOSE, backlog: 0, tcpOpts, shutdown }),
    };
  }

  /**
   * A connected TCP socket, or one connecting (SYN_SENT: `peer` is where its SYN goes, from
   * SO_PEERNAME): its state checked, then (a dump) locked and read in repair mode.
   */
  private connection(pid: number, rec: FdRecord, flags: number, s: SocketInfo, ino: number, peerAddr: Buffer = s.peer!, endedShutdown?: number): FdClaim {
    // one that ended (CLOSE: sock_diag no longer lists it), how it was shut down as poll saw it
    const ended = endedShutdown !== undefined;
    const what = `TCP connection ${text(s.local!)} -> ${text(peerAddr)}`;
    // (one of a namespace below the root's is locked in there)
    const netns = this.net?.path;
    const state = tcpStateOf(pid, rec.fd);
    // (one that ended is carried without --tcp-established, as CRIU 4.2 carries it)
    const carried = ended ? new Set([TCP_STATE.CLOSE]) : CARRIED_STATES;
    if (!ended && !this.o.tcpEstablished && !this.o.tcpClose) {
      const how = state === TCP_STATE.ESTABLISHED ? 'established' : state === TCP_STATE.SYN_SENT ? 'being set up (SYN_SENT: a connect under way)' : `half-closed (${STATE_NAMES[state] ?? state})`;
      throw refuseFd(pid, rec.fd, `${what} is ${how}; dump with --tcp-established to carry it (or --tcp-close to restore it closed)`, rec.target);
    }
    const repairs = this.o.repairs;
    if (!carried.has(state)) {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd} (${rec.target}): ${what} is in state ${STATE_NAMES[state] ?? state}, which crtools does not carry yet (SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK and CLOSING are)`, {
        context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    // how the task shut it down (sock_diag), as CRIU keeps it for a TCP socket: when not none
    const how = (): number => (ended ? endedShutdown : inetShutdown(s.domain, s.protocol, ino) & 3);
    const { opts, raw, tcpOpts } = readSocketOptions(pid, rec.fd, keptOptions(s), 'connection');
    const ip = ipOpts(s, raw);
    const local = sockaddrParts(s.local!);
    const peer = sockaddrParts(peerAddr);
    const conn = { family: s.domain, src: local.addr, sport: local.port, dst: peer.addr, dport: peer.port };
    return {
      type: 'INETSK', key: rec.target,
      entry: (id) => {
        if (this.o.tcpClose || !repairs) return inetEntry(id, flags, ino, s, peer, opts, ip, { state, backlog: 0, tcpOpts, shutdown: how() });
        const st = repairs.take(pid, rec.fd, conn, !!opts['reuseaddr'], netns);
        // locked now: a state it moved to since it was looked at (a FIN or ACK that came in) is the one kept
        if (!carried.has(st.state)) throw refuseFd(pid, rec.fd, `${what} moved to state ${STATE_NAMES[st.state] ?? st.state} while it was dumped`, rec.target);
        const tse: Entry = {
          inq_len: st.inqLen, inq_seq: st.inqSeq, outq_len: st.outqLen, outq_seq: st.outqSeq,
          opt_mask: st.optMask, snd_wscale: st.optMask & 4 ? st.sndWscale : 0, mss_clamp: st.mssClamp,
          unsq_len: st.unsqLen, extra: Buffer.concat([st.inq, st.outq]),
        };
        if (st.optMask & 4) tse['rcv_wscale'] = st.rcvWscale;
        if (st.optMask & 1) tse['timestamp'] = st.timestamp;
        if (st.window) Object.assign(tse, { snd_wl1: st.window[0], snd_wnd: st.window[1], max_window: st.window[2], rcv_wnd: st.window[3], rcv_wup: st.window[4] });
        this.streams.push({ file: `tcp-stream-${ino.toString(16)}.img`, magic: 'TCP_STREAM', entries: [tse] });
        return inetEntry(id, flags, ino, s, peer, opts, ip, { state: st.state, backlog: st.outqLen, tcpOpts, shutdown: how() });
      },
    };
  }

  images(): DumpImage[] {
    return this.streams;
  }
}
