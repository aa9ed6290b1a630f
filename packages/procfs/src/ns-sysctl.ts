/**
 * The files under /proc that a namespace's state is read from, as a task inside the namespace
 * sees them (the caller reads them from there, e.g. through @crtools/sys' namespaceFiles), and
 * their parsers: the UTS names, the IPC sysctls (CRIU's ipc-var), the SysV IPC object lists.
 */

/** A UTS namespace's names. */
export const UTS_FILES = { nodename: '/proc/sys/kernel/hostname', domainname: '/proc/sys/kernel/domainname' } as const;

/** One line of a /proc/sys file with its newline dropped. */
export function parseSysctlString(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * An IPC namespace's sysctls, by the ipc_var_entry field each fills, with its file and how it
 * reads: `u32[]` (kernel/sem: four numbers), `u32`, `u64`. `optional`: absent from some kernels
 * (auto_msgmni went in 3.19; the mqueue ones need CONFIG_POSIX_MQUEUE), read as 0 / not kept.
 */
export const IPC_VAR_SYSCTLS = [
  { field: 'sem_ctls', path: '/proc/sys/kernel/sem', type: 'u32[]' },
  { field: 'msg_ctlmax', path: '/proc/sys/kernel/msgmax', type: 'u32' },
  { field: 'msg_ctlmnb', path: '/proc/sys/kernel/msgmnb', type: 'u32' },
  { field: 'msg_ctlmni', path: '/proc/sys/kernel/msgmni', type: 'u32' },
  { field: 'auto_msgmni', path: '/proc/sys/kernel/auto_msgmni', type: 'u32', optional: true },
  { field: 'shm_ctlmax', path: '/proc/sys/kernel/shmmax', type: 'u64' },
  { field: 'shm_ctlall', path: '/proc/sys/kernel/shmall', type: 'u64' },
  { field: 'shm_ctlmni', path: '/proc/sys/kernel/shmmni', type: 'u32' },
  { field: 'shm_rmid_forced', path: '/proc/sys/kernel/shm_rmid_forced', type: 'u32' },
  { field: 'mq_queues_max', path: '/proc/sys/fs/mqueue/queues_max', type: 'u32', optional: true },
  { field: 'mq_msg_max', path: '/proc/sys/fs/mqueue/msg_max', type: 'u32', optional: true },
  { field: 'mq_msgsize_max', path: '/proc/sys/fs/mqueue/msgsize_max', type: 'u32', optional: true },
  { field: 'mq_msg_default', path: '/proc/sys/fs/mqueue/msg_default', type: 'u32', optional: true },
  { field: 'mq_msgsize_default', path: '/proc/sys/fs/mqueue/msgsize_default', type: 'u32', optional: true },
  { field: 'msg_next_id', path: '/proc/sys/kernel/msg_next_id', type: 'u32', optional: true },
  { field: 'sem_next_id', path: '/proc/sys/kernel/sem_next_id', type: 'u32', optional: true },
  { field: 'shm_next_id', path: '/proc/sys/kernel/shm_next_id', type: 'u32', optional: true },
] as const;

export type IpcVarField = (typeof IPC_VAR_SYSCTLS)[number]['field'];

/** The value of one IPC sysctl's file: a number (u32 as a number, u64 as a bigint) or kernel/sem's four. */
export function parseIpcSysctl(type: 'u32' | 'u64' | 'u32[]', text: string): number | bigint | number[] {
  const words = text.trim().split(/\s+/);
  if (type === 'u32[]') return words.map((w) => Number(w) >>> 0);
  // the *_next_id files read -1 until set; as u32 that is 0xffffffff
  return type === 'u64' ? BigInt.asUintN(64, BigInt(words[0]!)) : Number(words[0]) >>> 0;
}

/** The SysV IPC object lists of an IPC namespace (one header line, then one line per object). */
export const SYSVIPC_FILES = { shm: '/proc/sysvipc/shm', sem: '/proc/sysvipc/sem', msg: '/proc/sysvipc/msg' } as const;

/** How many objects a /proc/sysvipc list shows (the lines after its header). */
export function countSysvipc(text: string): number {
  return text.split('\n').slice(1).filter((l) => l.trim() !== '').length;
}

/** What is written to one IPC sysctl's file to set it (parseIpcSysctl's inverse). */
export function formatIpcSysctl(type: 'u32' | 'u64' | 'u32[]', value: unknown): string {
  return Array.isArray(value) ? value.map((v) => String(v)).join(' ') : String(value);
}

/** One object of a /proc/sysvipc list (shm, sem or msg), by its header's column names. */
export interface SysvipcRecord {
  key: number;
  id: number;
  /** the permission word as the kernel prints it (octal), with SHM_DEST/SHM_LOCKED for segments */
  mode: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** shm: size in bytes; nattch: how many attaches */
  size?: number;
  nattch?: number;
  /** sem: how many semaphores */
  nsems?: number;
  /** msg: bytes and messages queued */
  cbytes?: number;
  qnum?: number;
}

/** The objects a /proc/sysvipc list shows (keys as the unsigned 32-bit key_t bits). */
export function parseSysvipc(text: string): SysvipcRecord[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (!lines.length) return [];
  const head = lines[0]!.trim().split(/\s+/);
  const col = (cells: string[], name: string): string | undefined => {
    const i = head.indexOf(name);
    return i < 0 ? undefined : cells[i];
  };
  return lines.slice(1).map((l) => {
    const c = l.trim().split(/\s+/);
    const n = (name: string): number | undefined => {
      const v = col(c, name);
      return v === undefined ? undefined : Number(v);
    };
    const r: SysvipcRecord = {
      key: Number(c[0]) >>> 0,
      id: Number(c[1]),
      mode: parseInt(col(c, 'perms') ?? '0', 8),
      uid: n('uid') ?? 0, gid: n('gid') ?? 0, cuid: n('cuid') ?? 0, cgid: n('cgid') ?? 0,
    };
    for (const k of ['size', 'nattch', 'nsems', 'cbytes', 'qnum'] as const) {
      const v = n(k);
      if (v !== undefined) r[k] = v;
    }
    return r;
  });
}

/**
 * A network namespace's sysctls as CRIU 4.2 keeps them, in its order (the order is the image's:
 * netdev's conf4/conf6 and netns' def/all lists are these, entry by entry): the IPv4 and IPv6
 * per-device settings (net/ipv4/conf/DEV/NAME, net/ipv6/conf/DEV/NAME, also for the "all" and
 * "default" pseudo devices), the unix ones and the IPv4 ones of the namespace.
 */
export const NET_CONF4 = [
  'accept_local', 'accept_redirects', 'accept_source_route', 'arp_accept', 'arp_announce', 'arp_filter', 'arp_ignore', 'arp_notify',
  'bootp_relay', 'disable_policy', 'disable_xfrm', 'force_igmp_version', 'forwarding', 'igmpv2_unsolicited_report_interval',
  'igmpv3_unsolicited_report_interval', 'log_martians', 'medium_id', 'promote_secondaries', 'proxy_arp', 'proxy_arp_pvlan',
  'route_localnet', 'rp_filter', 'secure_redirects', 'send_redirects', 'shared_media', 'src_valid_mark', 'tag',
  'ignore_routes_with_linkdown', 'drop_gratuitous_arp', 'drop_unicast_in_l2_multicast',
] as const;

export const NET_CONF6 = [
  'accept_dad', 'accept_ra', 'accept_ra_defrtr', 'accept_ra_from_local', 'accept_ra_min_hop_limit', 'accept_ra_mtu', 'accept_ra_pinfo',
  'accept_ra_rt_info_max_plen', 'accept_ra_rtr_pref', 'accept_redirects', 'accept_source_route', 'autoconf', 'dad_transmits',
  'disable_ipv6', 'drop_unicast_in_l2_multicast', 'drop_unsolicited_na', 'force_mld_version', 'force_tllao', 'forwarding', 'hop_limit',
  'ignore_routes_with_linkdown', 'keep_addr_on_down', 'max_addresses', 'max_desync_factor', 'mldv1_unsolicited_report_interval',
  'mldv2_unsolicited_report_interval', 'mtu', 'ndisc_notify', 'optimistic_dad', 'proxy_ndp', 'regen_max_retry', 'router_probe_interval',
  'router_solicitation_delay', 'router_solicitation_interval', 'router_solicitations', 'stable_secret', 'suppress_frag_ndisc',
  'temp_prefered_lft', 'temp_valid_lft', 'use_oif_addrs_only', 'use_optimistic', 'use_tempaddr',
] as const;

/** The IPv6 setting that is a string (the others are 32-bit numbers); it reads EIO until set. */
export const NET_CONF6_STRING = 'stable_secret';

/** The file of one per-device setting (proto ipv4 or ipv6; dev a device, "all" or "default"). */
export function netConfPath(proto: 'ipv4' | 'ipv6', dev: string, name: string): string {
  return `/proc/sys/net/${proto}/conf/${dev}/${name}`;
}

/** netns_entry.unix_conf, in order. */
export const NET_UNIX_CONF = ['/proc/sys/net/unix/max_dgram_qlen'] as const;

/** netns_entry.ipv4_sysctl, in order (a string: "START\tEND"). */
export const NET_IPV4_SYSCTLS = ['/proc/sys/net/ipv4/ping_group_range'] as const;
