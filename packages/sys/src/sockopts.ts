/**
 * Socket options by name: level, option number, the bytes getsockopt answers with, and how to
 * read them. One table for everyone who asks sockets about themselves (the dump, the state
 * fingerprint). SO_ERROR is not here: reading it clears it.
 */
import type { SockoptQuery } from './probe.js';

export type SockoptShape = 'int' | 'bytes' | 'len';

export interface SocketOption extends SockoptQuery {
  option: string;
  /** int: a 4-byte int; bytes: raw; len: only the length answered (SO_GET_FILTER: instructions) */
  shape: SockoptShape;
}

const SOL_SOCKET = 1;
const IPPROTO_IP = 0;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const SOL_UDP = 17;
const SOL_ICMPV6 = 58;
const SOL_RAW = 255;
const SOL_PACKET = 263;
const SOL_NETLINK = 270;

const o = (option: string, level: number, name: number, length = 4, shape: SockoptShape = 'int'): SocketOption => ({ option, level, name, length, shape });

export const SOCKET_OPTIONS: readonly SocketOption[] = [
  // SOL_SOCKET (SO_INCOMING_CPU is left out: it is the CPU that last handled the socket)
  o('SO_DEBUG', SOL_SOCKET, 1), o('SO_REUSEADDR', SOL_SOCKET, 2), o('SO_TYPE', SOL_SOCKET, 3), o('SO_DONTROUTE', SOL_SOCKET, 5),
  o('SO_BROADCAST', SOL_SOCKET, 6), o('SO_SNDBUF', SOL_SOCKET, 7), o('SO_RCVBUF', SOL_SOCKET, 8), o('SO_KEEPALIVE', SOL_SOCKET, 9),
  o('SO_OOBINLINE', SOL_SOCKET, 10), o('SO_NO_CHECK', SOL_SOCKET, 11), o('SO_PRIORITY', SOL_SOCKET, 12), o('SO_LINGER', SOL_SOCKET, 13, 8, 'bytes'),
  o('SO_REUSEPORT', SOL_SOCKET, 15), o('SO_PASSCRED', SOL_SOCKET, 16), o('SO_PEERCRED', SOL_SOCKET, 17, 12, 'bytes'), o('SO_RCVLOWAT', SOL_SOCKET, 18),
  o('SO_SNDLOWAT', SOL_SOCKET, 19), o('SO_RCVTIMEO', SOL_SOCKET, 20, 16, 'bytes'), o('SO_SNDTIMEO', SOL_SOCKET, 21, 16, 'bytes'),
  o('SO_BINDTODEVICE', SOL_SOCKET, 25, 16, 'bytes'), o('SO_GET_FILTER', SOL_SOCKET, 26, 0, 'len'), o('SO_TIMESTAMP', SOL_SOCKET, 29),
  o('SO_ACCEPTCONN', SOL_SOCKET, 30), o('SO_PASSSEC', SOL_SOCKET, 34), o('SO_TIMESTAMPNS', SOL_SOCKET, 35), o('SO_MARK', SOL_SOCKET, 36),
  o('SO_TIMESTAMPING', SOL_SOCKET, 37), o('SO_PROTOCOL', SOL_SOCKET, 38), o('SO_DOMAIN', SOL_SOCKET, 39), o('SO_RXQ_OVFL', SOL_SOCKET, 40),
  o('SO_WIFI_STATUS', SOL_SOCKET, 41), o('SO_PEEK_OFF', SOL_SOCKET, 42), o('SO_NOFCS', SOL_SOCKET, 43), o('SO_LOCK_FILTER', SOL_SOCKET, 44),
  o('SO_SELECT_ERR_QUEUE', SOL_SOCKET, 45), o('SO_BUSY_POLL', SOL_SOCKET, 46), o('SO_MAX_PACING_RATE', SOL_SOCKET, 47, 8, 'bytes'),
  o('SO_ZEROCOPY', SOL_SOCKET, 60), o('SO_TXTIME', SOL_SOCKET, 61, 8, 'bytes'), o('SO_BINDTOIFINDEX', SOL_SOCKET, 62),
  o('SO_PREFER_BUSY_POLL', SOL_SOCKET, 69), o('SO_BUSY_POLL_BUDGET', SOL_SOCKET, 70), o('SO_BUF_LOCK', SOL_SOCKET, 72),
  o('SO_RESERVE_MEM', SOL_SOCKET, 73), o('SO_TXREHASH', SOL_SOCKET, 74), o('SO_RCVMARK', SOL_SOCKET, 75), o('SO_PASSPIDFD', SOL_SOCKET, 76),
  // IPPROTO_TCP
  o('TCP_NODELAY', IPPROTO_TCP, 1), o('TCP_MAXSEG', IPPROTO_TCP, 2), o('TCP_CORK', IPPROTO_TCP, 3), o('TCP_KEEPIDLE', IPPROTO_TCP, 4),
  o('TCP_KEEPINTVL', IPPROTO_TCP, 5), o('TCP_KEEPCNT', IPPROTO_TCP, 6), o('TCP_SYNCNT', IPPROTO_TCP, 7), o('TCP_LINGER2', IPPROTO_TCP, 8),
  o('TCP_DEFER_ACCEPT', IPPROTO_TCP, 9), o('TCP_WINDOW_CLAMP', IPPROTO_TCP, 10), o('TCP_CONGESTION', IPPROTO_TCP, 13, 16, 'bytes'),
  o('TCP_USER_TIMEOUT', IPPROTO_TCP, 18), o('TCP_FASTOPEN', IPPROTO_TCP, 23), o('TCP_NOTSENT_LOWAT', IPPROTO_TCP, 25),
  // IPPROTO_IP
  o('IP_TOS', IPPROTO_IP, 1), o('IP_TTL', IPPROTO_IP, 2), o('IP_HDRINCL', IPPROTO_IP, 3), o('IP_OPTIONS', IPPROTO_IP, 4, 40, 'bytes'),
  o('IP_RECVOPTS', IPPROTO_IP, 6), o('IP_PKTINFO', IPPROTO_IP, 8), o('IP_MTU_DISCOVER', IPPROTO_IP, 10), o('IP_RECVERR', IPPROTO_IP, 11),
  o('IP_RECVTTL', IPPROTO_IP, 12), o('IP_RECVTOS', IPPROTO_IP, 13), o('IP_FREEBIND', IPPROTO_IP, 15), o('IP_TRANSPARENT', IPPROTO_IP, 19),
  o('IP_BIND_ADDRESS_NO_PORT', IPPROTO_IP, 24), o('IP_MULTICAST_TTL', IPPROTO_IP, 33), o('IP_MULTICAST_LOOP', IPPROTO_IP, 34),
  o('IP_NODEFRAG', IPPROTO_IP, 22),
  // IPPROTO_IPV6
  o('IPV6_UNICAST_HOPS', IPPROTO_IPV6, 16), o('IPV6_MULTICAST_HOPS', IPPROTO_IPV6, 18), o('IPV6_MULTICAST_LOOP', IPPROTO_IPV6, 19),
  o('IPV6_V6ONLY', IPPROTO_IPV6, 26), o('IPV6_RECVPKTINFO', IPPROTO_IPV6, 49), o('IPV6_TCLASS', IPPROTO_IPV6, 67),
  o('IPV6_TRANSPARENT', IPPROTO_IPV6, 75), o('IPV6_FREEBIND', IPPROTO_IPV6, 78), o('IPV6_CHECKSUM', IPPROTO_IPV6, 7), o('IPV6_HDRINCL', IPPROTO_IPV6, 36),
  // SOL_UDP (UDP and UDP-lite), SOL_RAW and SOL_ICMPV6 (raw ICMP sockets' filters)
  o('UDP_CORK', SOL_UDP, 1), o('UDP_SEGMENT', SOL_UDP, 103), o('UDP_GRO', SOL_UDP, 104),
  o('ICMP_FILTER', SOL_RAW, 1, 4, 'bytes'), o('ICMPV6_FILTER', SOL_ICMPV6, 1, 32, 'bytes'),
  // SOL_PACKET (PACKET_STATISTICS is left out: reading it clears the counters)
  o('PACKET_AUXDATA', SOL_PACKET, 8), o('PACKET_ORIGDEV', SOL_PACKET, 9), o('PACKET_VERSION', SOL_PACKET, 10),
  o('PACKET_RESERVE', SOL_PACKET, 12), o('PACKET_LOSS', SOL_PACKET, 14), o('PACKET_VNET_HDR', SOL_PACKET, 15),
  o('PACKET_TIMESTAMP', SOL_PACKET, 17), o('PACKET_FANOUT', SOL_PACKET, 18), o('PACKET_TX_HAS_OFF', SOL_PACKET, 19),
  o('PACKET_QDISC_BYPASS', SOL_PACKET, 20), o('PACKET_IGNORE_OUTGOING', SOL_PACKET, 23), o('PACKET_VNET_HDR_SZ', SOL_PACKET, 24),
  // SOL_NETLINK (NETLINK_LIST_MEMBERSHIPS: the groups, kept by the socket's own entry)
  o('NETLINK_PKTINFO', SOL_NETLINK, 3), o('NETLINK_BROADCAST_ERROR', SOL_NETLINK, 4), o('NETLINK_NO_ENOBUFS', SOL_NETLINK, 5),
  o('NETLINK_LISTEN_ALL_NSID', SOL_NETLINK, 8), o('NETLINK_LIST_MEMBERSHIPS', SOL_NETLINK, 9, 32, 'bytes'),
  o('NETLINK_CAP_ACK', SOL_NETLINK, 10), o('NETLINK_EXT_ACK', SOL_NETLINK, 11), o('NETLINK_GET_STRICT_CHK', SOL_NETLINK, 12),
];

/** One answer of SOCKET_OPTIONS[i] as a number (int, len) or hex (bytes); a refusal as its negative errno in a string. */
export function sockoptValue(opt: SocketOption, v: Buffer | number | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v < 0 ? String(v) : v;
  return opt.shape === 'int' && v.length === 4 ? v.readInt32LE(0) : v.toString('hex');
}
