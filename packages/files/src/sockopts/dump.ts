/**
 * A socket's options as CRIU's sk_opts_entry keeps them, read from the task's socket through a
 * copy of its descriptor. Every other option the socket has set away from what a fresh socket
 * of its kind has cannot be kept in the format: it is refused by name, never dropped.
 */
import { probeFile, probeFreshSocket, SOCKET_OPTIONS, sockoptValue } from '@crtools/sys';
import { refuseFd, type Entry } from '../dump/kind.js';
import { filterWords } from './filter.js';

/** the options sk_opts_entry has a field for */
const KEPT = new Set([
  'SO_SNDBUF', 'SO_RCVBUF', 'SO_SNDTIMEO', 'SO_RCVTIMEO', 'SO_REUSEADDR', 'SO_REUSEPORT', 'SO_PRIORITY', 'SO_RCVLOWAT', 'SO_MARK',
  'SO_PASSCRED', 'SO_PASSSEC', 'SO_DONTROUTE', 'SO_NO_CHECK', 'SO_BINDTODEVICE', 'SO_BINDTOIFINDEX', 'SO_GET_FILTER', 'SO_BROADCAST',
  'SO_KEEPALIVE', 'TCP_KEEPCNT', 'TCP_KEEPIDLE', 'TCP_KEEPINTVL', 'SO_OOBINLINE', 'SO_LINGER', 'SO_BUF_LOCK',
]);
/** what the socket is or what its connection says, not a setting (kept by the socket's own entry) */
const NOT_SETTINGS = new Set(['SO_TYPE', 'SO_PROTOCOL', 'SO_DOMAIN', 'SO_ACCEPTCONN', 'SO_PEERCRED', 'IPV6_V6ONLY']);

const SO_GET_FILTER = SOCKET_OPTIONS.findIndex((o) => o.option === 'SO_GET_FILTER');

export interface SocketOptions {
  /** sk_opts_entry */
  opts: Entry;
  domain: number;
  type: number;
  protocol: number;
  /** every answer of SOCKET_OPTIONS by name (what the kind keeps in its own entry) */
  raw: Map<string, Buffer | number | undefined>;
  /** a connected TCP socket's tcp_opts_entry (TCP_NODELAY, TCP_CORK, keepalive settings; only those set) */
  tcpOpts?: Entry;
  /** its poll(2) events (POLLIN | POLLOUT | POLLRDHUP asked), as probed with the options */
  events: number;
}

/** kept for a TCP socket in tcp_opts_entry */
const TCP_OPTS = new Set(['TCP_NODELAY', 'TCP_CORK']);
/**
 * part of a connection's state (TCP_MAXSEG: its MSS; TCP_WINDOW_CLAMP: its window), or what an
 * accepted socket takes from the peer's SYN without meaning anything to TCP (IP_MULTICAST_TTL,
 * IPV6_MULTICAST_HOPS: the SYN's TTL or hop limit): no setting of the task's on a socket that
 * has (or had) a connection
 */
const CONNECTION_STATE = new Set(['TCP_MAXSEG', 'TCP_WINDOW_CLAMP', 'IP_MULTICAST_TTL', 'IPV6_MULTICAST_HOPS']);

/**
 * What kind of TCP socket the options are read of: 'connection', one that has or had a
 * connection (its tcp_opts_entry; what the connection worked out is not taken for a setting);
 * 'socket', one that never had (its tcp_opts_entry only).
 */
export type TcpSocketKind = 'connection' | 'socket';

function int(v: Buffer | number | undefined): number | undefined {
  return Buffer.isBuffer(v) && v.length >= 4 ? v.readInt32LE(0) : undefined;
}

/**
 * The options of task pid's socket at fd, for its sk_opts_entry. Throws UNSUPPORTED_FILE naming
 * the first option set that the format cannot keep. `kept`: options the kind keeps in its own
 * entry (not refused); `tcp`: the socket is a TCP socket whose tcp_opts_entry is wanted (TcpSocketKind).
 */
export function readSocketOptions(pid: number, fd: number, kept: readonly string[] = [], tcp?: TcpSocketKind): SocketOptions {
  const p = probeFile(pid, fd, SOCKET_OPTIONS);
  const raw = new Map(SOCKET_OPTIONS.map((o, i) => [o.option, p.sockopts[i]]));
  const domain = int(raw.get('SO_DOMAIN')) ?? 0;
  const type = int(raw.get('SO_TYPE')) ?? 0;
  const protocol = int(raw.get('SO_PROTOCOL')) ?? 0;
  const fresh = probeFreshSocket(domain, type, protocol, SOCKET_OPTIONS);
  SOCKET_OPTIONS.forEach((o, i) => {
    if (KEPT.has(o.option) || NOT_SETTINGS.has(o.option) || kept.includes(o.option) || (tcp && TCP_OPTS.has(o.option)) || (tcp === 'connection' && CONNECTION_STATE.has(o.option))) return;
    const mine = sockoptValue(o, p.sockopts[i]);
    const dflt = sockoptValue(o, fresh[i]);
    if (mine !== dflt) throw refuseFd(pid, fd, `socket option ${o.option} is not supported (set to ${mine}, a new socket has ${dflt})`);
  });

  const n = (name: string): number => int(raw.get(name)) ?? 0;
  const timeval = (name: string): [bigint, bigint] => {
    const b = raw.get(name);
    return Buffer.isBuffer(b) && b.length >= 16 ? [b.readBigInt64LE(0), b.readBigInt64LE(8)] : [0n, 0n];
  };
  const [sndSec, sndUsec] = timeval('SO_SNDTIMEO');
  const [rcvSec, rcvUsec] = timeval('SO_RCVTIMEO');
  const opts: Entry = {
    so_sndbuf: n('SO_SNDBUF'), so_rcvbuf: n('SO_RCVBUF'),
    so_snd_tmo_sec: BigInt.asUintN(64, sndSec), so_snd_tmo_usec: BigInt.asUintN(64, sndUsec),
    so_rcv_tmo_sec: BigInt.asUintN(64, rcvSec), so_rcv_tmo_usec: BigInt.asUintN(64, rcvUsec),
    reuseaddr: n('SO_REUSEADDR') !== 0, so_priority: n('SO_PRIORITY'), so_rcvlowat: n('SO_RCVLOWAT'), so_mark: n('SO_MARK') >>> 0,
    so_passcred: n('SO_PASSCRED') !== 0, so_passsec: n('SO_PASSSEC') !== 0, so_dontroute: n('SO_DONTROUTE') !== 0,
    so_no_check: n('SO_NO_CHECK') !== 0, so_reuseport: n('SO_REUSEPORT') !== 0, so_broadcast: n('SO_BROADCAST') !== 0,
    so_keepalive: n('SO_KEEPALIVE') !== 0, so_oobinline: n('SO_OOBINLINE'),
  };
  const dev = raw.get('SO_BINDTODEVICE');
  if (Buffer.isBuffer(dev) && dev.length && dev[0] !== 0) opts['so_bound_dev'] = dev.subarray(0, dev.indexOf(0) < 0 ? dev.length : dev.indexOf(0)).toString();
  const linger = raw.get('SO_LINGER');
  if (Buffer.isBuffer(linger) && linger.length >= 8 && linger.readInt32LE(0) !== 0) opts['so_linger'] = linger.readInt32LE(4);
  if (protocol === 6 && opts['so_keepalive']) Object.assign(opts, { tcp_keepcnt: n('TCP_KEEPCNT'), tcp_keepidle: n('TCP_KEEPIDLE'), tcp_keepintvl: n('TCP_KEEPINTVL') });
  const lock = raw.get('SO_BUF_LOCK');
  if (Buffer.isBuffer(lock)) opts['so_buf_lock'] = lock.readInt32LE(0);
  // a classic filter: its instructions (8 bytes each); one that cannot be read back (eBPF) is refused
  const count = p.sockopts[SO_GET_FILTER];
  const noFilter = () => refuseFd(pid, fd, 'socket option SO_ATTACH_FILTER: the filter cannot be read back (an eBPF one?) and is not supported');
  if (typeof count === 'number' && count < 0) throw noFilter();
  if (typeof count === 'number' && count > 0) {
    // (SO_GET_FILTER's length counts instructions)
    const prog = probeFile(pid, fd, [{ level: 1, name: 26, length: count }]).sockopts[0];
    if (!Buffer.isBuffer(prog) || prog.length !== count * 8) throw noFilter();
    opts['so_filter'] = filterWords(prog);
  }
  if (!tcp) return { opts, domain, type, protocol, raw, events: p.events };
  // as CRIU: a field only when the option is set (not zero)
  const tcpOpts: Entry = {};
  const set = { nodelay: n('TCP_NODELAY') !== 0, cork: n('TCP_CORK') !== 0, keepcnt: n('TCP_KEEPCNT'), keepidle: n('TCP_KEEPIDLE'), keepintvl: n('TCP_KEEPINTVL') };
  for (const [k, v] of Object.entries(set)) if (v) tcpOpts[k] = v;
  return { opts, domain, type, protocol, raw, tcpOpts, events: p.events };
}
