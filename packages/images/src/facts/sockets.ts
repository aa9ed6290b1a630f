/**
 * Socket facts the images hold as numbers (sk-inet/sk-unix entries: family, type, state,
 * protocol), as the kernel defines them.
 */
export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16, PACKET: 17 } as const;
export const SOCK_TYPE = { STREAM: 1, DGRAM: 2, RAW: 3, RDM: 4, SEQPACKET: 5, PACKET: 10 } as const;
export const TCP_STATE = {
  ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7, CLOSE_WAIT: 8,
  LAST_ACK: 9, LISTEN: 10, CLOSING: 11,
} as const;
/**
 * unix_sk_entry.uflags: EXTERN marks the record of a socket outside the dumped tree that one of
 * the tree is connected to (named by its inode and name; no descriptor holds it). SERVICE marks
 * an RPC client's own connection to the criu that dumped it (a self-dump): recorded closed with
 * no peer, made again as a socketpair end holding the DUMP answer `restored: true`.
 */
export const USK_FLAGS = { EXTERN: 1, SERVICE: 2 } as const;
export const IPPROTO = { IP: 0, ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, UDPLITE: 136, RAW: 255 } as const;

/** A value → name table of one of the objects above, for the names given (all by default). */
export function namesOf<T extends Record<string, number>>(table: T, only?: readonly (keyof T)[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const k of only ?? (Object.keys(table) as (keyof T)[])) out[table[k]!] = String(k);
  return out;
}

/**
 * netlink_sk_entry.state: the socket's sk_state as sock_diag reports it (CONNECTED once
 * connected; a socket that never was keeps the TCP_CLOSE every new socket starts with).
 */
export const NETLINK_STATE = { CONNECTED: 1, UNCONNECTED: 7 } as const;
/** packet_sock_entry.fanout when the socket is in no fanout group */
export const PACKET_NO_FANOUT = 0xffffffff;

/**
 * inventory_entry.network_lock_method: how the dump locked the tree's TCP connections (CRIU's
 * own enum, not rpc.proto's criu_network_lock_method, which counts from 1).
 */
export const NETWORK_LOCK_METHOD = { IPTABLES: 0, NFTABLES: 1, SKIP: 2 } as const;

/** The mark of packets that pass a network lock (CRIU's SOCCR_MARK): the rules drop every other one. */
export const NETWORK_LOCK_MARK = 0xc114;

/** TCPI_OPT_* bits of tcp_stream_entry.opt_mask */
export const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4, ECN: 8 } as const;

/** net_device_entry.type (netdev.proto nd_type) */
export const ND_TYPE = { LOOPBACK: 1, VETH: 2, TUN: 3, EXTLINK: 4, VENET: 5, BRIDGE: 6, MACVLAN: 7, SIT: 8 } as const;
