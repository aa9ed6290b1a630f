/**
 * The magic table: every image kind CRIU 4.2 knows, with the magic word(s) that open
 * its file, the protobuf message of its entries, the extra payload that follows each
 * entry (if any) and the file-name pattern CRIU uses for it. Facts from CRIU's
 * magic.h, image-desc.c and protobuf-desc.c; names are the ones crit prints.
 */

/** First word of every image except inventory (and raw images). */
export const IMG_COMMON_MAGIC = 0x54564319;
/** First word of service files (stats, irmap-cache). */
export const IMG_SERVICE_MAGIC = 0x55105940;
/** Raw images carry no magic at all. */
export const RAW_IMAGE_MAGIC = 0;

/**
 * What follows an entry in the file, and how its size is found:
 * - none: nothing
 * - pipe-data: `bytes` bytes (PIPES_DATA, FIFO_DATA)
 * - sk-queue: `length` bytes (SK_QUEUES)
 * - tcp-stream: `inq_len` + `outq_len` bytes (TCP_STREAM)
 * - bpfmap-data: `keys_bytes` + `values_bytes` bytes (BPFMAP_DATA)
 * - ipc-shm: `size` bytes rounded up to 4 (IPCNS_SHM), unless `in_pagemaps` (then none: the
 *   contents are in pagemap-shmem/pages images, as CRIU 4.2 writes them)
 * - ipc-sem: `nsems` u16 values rounded up to 8 bytes (IPCNS_SEM)
 * - ipc-msg: `qnum` messages, each a u32 length + ipc_msg + `msize` bytes rounded up to 8 (IPCNS_MSG)
 * - pagemap: not an extra; the first entry is a pagemap_head, the others pagemap_entry (PAGEMAP)
 * - ghost-file: the first entry is a ghost_file_entry; with `chunks` set the others are
 *   ghost_chunk_entry each followed by `len` bytes, otherwise the rest of the file is the contents
 */
export type PayloadKind =
  | 'none'
  | 'pipe-data'
  | 'sk-queue'
  | 'tcp-stream'
  | 'bpfmap-data'
  | 'ipc-shm'
  | 'ipc-sem'
  | 'ipc-msg'
  | 'pagemap'
  | 'ghost-file';

export interface MagicInfo {
  /** Name as crit prints it ("CORE", "PAGEMAP", …). */
  name: string;
  /** The kind's own magic word. */
  magic: number;
  /** Which word precedes it: 'common', 'service' or 'none' (inventory). */
  prefix: 'common' | 'service' | 'none';
  /** Protobuf message of the entries (of all but the first for pagemap/ghost-file); null when not protobuf. */
  message: string | null;
  /** Message of the first entry where it differs (pagemap_head, ghost_file_entry). */
  firstMessage?: string;
  /** Message of the entries after the first where it differs (ghost_chunk_entry). */
  payload: PayloadKind;
  /** CRIU file-name patterns (%u decimal id, %x hex id, %s word). */
  files: string[];
}

function k(
  name: string,
  magic: number,
  message: string | null,
  files: string[],
  payload: PayloadKind = 'none',
  prefix: MagicInfo['prefix'] = 'common',
): MagicInfo {
  return { name, magic, prefix, message, payload, files };
}

/** Every protobuf-framed kind, in the order of CRIU's magic.h. */
export const MAGICS: readonly MagicInfo[] = [
  k('INVENTORY', 0x58313116, 'inventory_entry', ['inventory.img'], 'none', 'none'),
  k('PSTREE', 0x50273030, 'pstree_entry', ['pstree.img']),
  k('FDINFO', 0x56213732, 'fdinfo_entry', ['fdinfo-%u.img']),
  { ...k('PAGEMAP', 0x56084025, 'pagemap_entry', ['pagemap-%u.img', 'pagemap-shmem-%u.img'], 'pagemap'), firstMessage: 'pagemap_head' },
  k('CORE', 0x55053847, 'core_entry', ['core-%u.img']),
  k('IDS', 0x54432030, 'task_kobj_ids_entry', ['ids-%u.img']),
  k('VMAS', 0x54123737, 'vma_entry', ['vmas-%u.img']),
  k('PIPES', 0x56513555, 'pipe_entry', ['pipes.img']),
  k('PIPES_DATA', 0x56453709, 'pipe_data_entry', ['pipes-data.img'], 'pipe-data'),
  k('FIFO', 0x58364939, 'fifo_entry', ['fifo.img']),
  k('FIFO_DATA', 0x59333054, 'pipe_data_entry', ['fifo-data.img'], 'pipe-data'),
  k('SIGACT', 0x55344201, 'sa_entry', ['sigacts-%u.img']),
  k('UNIXSK', 0x54373943, 'unix_sk_entry', ['unixsk.img']),
  k('INETSK', 0x56443851, 'inet_sk_entry', ['inetsk.img']),
  k('PACKETSK', 0x60454618, 'packet_sock_entry', ['packetsk.img']),
  k('ITIMERS', 0x57464056, 'itimer_entry', ['itimers-%u.img']),
  k('POSIX_TIMERS', 0x52603957, 'posix_timer_entry', ['posix-timers-%u.img']),
  k('SK_QUEUES', 0x56264026, 'sk_packet_entry', ['sk-queues.img'], 'sk-queue'),
  k('UTSNS', 0x54473203, 'utsns_entry', ['utsns-%u.img']),
  k('CREDS', 0x54023547, 'creds_entry', ['creds-%u.img']),
  k('IPC_VAR', 0x53115007, 'ipc_var_entry', ['ipcns-var-%u.img']),
  k('IPCNS_SHM', 0x46283044, 'ipc_shm_entry', ['ipcns-shm-%u.img'], 'ipc-shm'),
  k('IPCNS_MSG', 0x55453737, 'ipc_msg_entry', ['ipcns-msg-%u.img'], 'ipc-msg'),
  k('IPCNS_SEM', 0x59573019, 'ipc_sem_entry', ['ipcns-sem-%u.img'], 'ipc-sem'),
  k('REG_FILES', 0x50363636, 'reg_file_entry', ['reg-files.img']),
  k('EXT_FILES', 0x59255641, 'ext_file_entry', ['ext-files.img']),
  k('FS', 0x51403912, 'fs_entry', ['fs-%u.img']),
  k('MM', 0x57492820, 'mm_entry', ['mm-%u.img']),
  k('REMAP_FPATH', 0x59133954, 'remap_file_path_entry', ['remap-fpath.img']),
  { ...k('GHOST_FILE', 0x52583605, 'ghost_chunk_entry', ['ghost-file-%x.img'], 'ghost-file'), firstMessage: 'ghost_file_entry' },
  k('TCP_STREAM', 0x51465506, 'tcp_stream_entry', ['tcp-stream-%x.img'], 'tcp-stream'),
  k('EVENTFD_FILE', 0x44523722, 'eventfd_file_entry', ['eventfd.img']),
  k('EVENTPOLL_FILE', 0x45023858, 'eventpoll_file_entry', ['eventpoll.img']),
  k('EVENTPOLL_TFD', 0x44433746, 'eventpoll_tfd_entry', ['eventpoll-tfd.img']),
  k('SIGNALFD', 0x57323820, 'signalfd_entry', ['signalfd.img']),
  k('INOTIFY_FILE', 0x48424431, 'inotify_file_entry', ['inotify.img']),
  k('INOTIFY_WD', 0x54562009, 'inotify_wd_entry', ['inotify-wd.img']),
  k('MNTS', 0x55563928, 'mnt_entry', ['mountpoints-%u.img']),
  k('NETDEV', 0x57373951, 'net_device_entry', ['netdev-%u.img']),
  k('NETNS', 0x55933752, 'netns_entry', ['netns-%u.img']),
  k('TTY_FILES', 0x59433025, 'tty_file_entry', ['tty.img']),
  k('TTY_INFO', 0x59453036, 'tty_info_entry', ['tty-info.img']),
  k('TTY_DATA', 0x59413026, 'tty_data_entry', ['tty-data.img']),
  k('FILE_LOCKS', 0x54323616, 'file_lock_entry', ['filelocks.img']),
  k('RLIMIT', 0x57113925, 'rlimit_entry', ['rlimit-%u.img']),
  k('FANOTIFY_FILE', 0x55096122, 'fanotify_file_entry', ['fanotify.img']),
  k('FANOTIFY_MARK', 0x56506035, 'fanotify_mark_entry', ['fanotify-mark.img']),
  k('SIGNAL', 0x59255647, 'siginfo_entry', ['signal-s-%u.img', 'signal-p-%u.img']),
  k('NETLINK_SK', 0x58005614, 'netlink_sk_entry', ['netlinksk.img']),
  k('NS_FILES', 0x61394011, 'ns_file_entry', ['ns-files.img']),
  k('TUNFILE', 0x57143751, 'tunfile_entry', ['tunfile.img']),
  k('CGROUP', 0x59383330, 'cgroup_entry', ['cgroup.img']),
  k('TIMERFD', 0x50493712, 'timerfd_entry', ['timerfd.img']),
  k('CPUINFO', 0x61404013, 'cpuinfo_entry', ['cpuinfo.img']),
  k('USERNS', 0x55474906, 'userns_entry', ['userns-%u.img']),
  k('SECCOMP', 0x64413049, 'seccomp_entry', ['seccomp.img']),
  k('BINFMT_MISC', 0x67343323, 'binfmt_misc_entry', ['binfmt-misc.img', 'binfmt-misc-%u.img']),
  k('AUTOFS', 0x49353943, 'autofs_entry', ['autofs-%u.img']),
  k('FILES', 0x56303138, 'file_entry', ['files.img']),
  k('MEMFD_INODE', 0x48453499, 'memfd_inode_entry', ['memfd.img']),
  k('TIMENS', 0x43114433, 'timens_entry', ['timens-%u.img']),
  k('PIDNS', 0x61157326, 'pidns_entry', ['pidns-%u.img']),
  k('BPFMAP_FILE', 0x57506142, 'bpfmap_file_entry', ['bpfmap-file.img']),
  k('BPFMAP_DATA', 0x64324033, 'bpfmap_data_entry', ['bpfmap-data.img'], 'bpfmap-data'),
  k('APPARMOR', 0x59423047, 'apparmor_entry', ['apparmor.img']),
  k('PIDFD', 0x54435556, 'pidfd_entry', ['pidfd.img']),
  k('STATS', 0x57093306, 'stats_entry', ['stats-%s'], 'none', 'service'),
  k('IRMAP_CACHE', 0x57004059, 'irmap_cache_entry', ['irmap-cache'], 'none', 'service'),
  // kerndat cache: a raw C struct after the magic, not protobuf (decoding it is refused).
  k('KDAT', 0x57023458, null, []),
];

/** Raw kinds: no magic, no framing (CRIU writes page data, tarballs, ip/nft dumps). */
export const RAW_KINDS: readonly { name: string; files: string[] }[] = [
  { name: 'PAGES', files: ['pages-%u.img', 'pages-shmem-%u.img'] },
  { name: 'IFADDR', files: ['ifaddr-%u.img'] },
  { name: 'ROUTE', files: ['route-%u.img'] },
  { name: 'ROUTE6', files: ['route6-%u.img'] },
  { name: 'RULE', files: ['rule-%u.img'] },
  { name: 'IPTABLES', files: ['iptables-%u.img'] },
  { name: 'IP6TABLES', files: ['ip6tables-%u.img'] },
  { name: 'NFTABLES', files: ['nftables-%u.img'] },
  { name: 'TMPFS_IMG', files: ['tmpfs-%u.tar.gz.img'] },
  { name: 'TMPFS_DEV', files: ['tmpfs-dev-%u.tar.gz.img'] },
  { name: 'NETNF_CT', files: ['netns-ct-%u.img'] },
  { name: 'NETNF_EXP', files: ['netns-exp-%u.img'] },
];

const byName = new Map<string, MagicInfo>(MAGICS.map((m) => [m.name, m]));
const byValue = new Map<number, MagicInfo>(MAGICS.map((m) => [m.magic, m]));

/** Look a kind up by crit name ("CORE"); undefined if unknown. */
export function magicByName(name: string): MagicInfo | undefined {
  return byName.get(name);
}

/** Look a kind up by its own magic word; undefined if unknown. */
export function magicByValue(value: number): MagicInfo | undefined {
  return byValue.get(value >>> 0);
}

/** The words that open a file of this kind (two words, or one for inventory). */
export function magicHeader(info: MagicInfo): Buffer {
  const words = info.prefix === 'none' ? [info.magic] : [info.prefix === 'service' ? IMG_SERVICE_MAGIC : IMG_COMMON_MAGIC, info.magic];
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, i * 4));
  return b;
}
