/**
 * The judging behind `criu check`: given a kerndat document, which features
 * are missing, what that breaks, and CRIU's verdict. Pure: no probing here.
 * Categories, names, messages and exit codes follow criu(8) and cr-check.c.
 */
import type { Kerndat } from './types.js';

export const CHECK_GOOD = 'Looks good.';
export const CHECK_BAD = 'Does not look good.';
export const CHECK_MAYBE = 'Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.';

/** 1 required, 2 extra (specific cases), 3 experimental, 4 optional (warn only). */
export type FeatureCategory = 1 | 2 | 3 | 4;

export interface Feature {
  name: string;
  category: FeatureCategory;
  /** selectable with --feature NAME (CRIU's feature list) */
  listed: boolean;
  /** undefined when present; else what is missing */
  test: (k: Kerndat) => string | undefined;
  /** what a missing feature breaks */
  breaks: string;
  /**
   * crtools does not carry the feature out whatever the kernel has: what `--feature NAME` then
   * says (a category sweep judges the kernel alone)
   */
  notCarried?: string;
}

type Test = (k: Kerndat) => string | undefined;

/** Test a set of keys: each must be true; absent keys are reported as not probed. */
function need(keys: Array<keyof Kerndat>, what: string): Test {
  return (k) => {
    const absent = keys.filter((key) => k[key] === undefined);
    if (absent.length) return `${what}: not probed (${absent.map((a) => k.errors?.[a as string] ?? `no ${String(a)} in the kerndat document`).join('; ')})`;
    const off = keys.filter((key) => k[key] !== true);
    return off.length ? what : undefined;
  };
}

function diagMissing(k: Kerndat, fams: Array<keyof NonNullable<Kerndat['sock_diag']>>): string | undefined {
  if (!k.sock_diag) return 'sock_diag was not probed';
  const off = fams.filter((f) => k.sock_diag![f] !== true);
  return off.length ? `no NETLINK_SOCK_DIAG for ${off.join(', ')}` : undefined;
}

// UFFD_FEATURE_EVENT_FORK | _EVENT_REMAP | _EVENT_REMOVE | _EVENT_UNMAP (CRIU's NEED_UFFD_API_FEATURES)
export const UFFD_NONCOOP_FEATURES = (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 6n);

function f(name: string, category: FeatureCategory, listed: boolean, test: Test, breaks: string, notCarried?: string): Feature {
  return { name, category, listed, test, breaks, ...(notCarried ? { notCarried } : {}) };
}

/** Every feature criu check knows, category 1 first, in CRIU's order. */
export const FEATURES: readonly Feature[] = [
  // ---- category 1: absolutely required
  // (CRIU refuses to run at all without one of these capabilities, before any check)
  f('caps', 1, false, need(['has_cap_checkpoint_restore'], 'neither CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN is effective'), 'nothing can be dumped or restored'),
  f('map_files', 1, false, need(['has_map_files'], '/proc/PID/map_files cannot be read'), 'file and shared-memory mappings cannot be dumped'),
  f('sock_diag', 1, false, (k) => diagMissing(k, ['unix', 'tcp', 'udp', 'tcp6', 'udp6', 'packet', 'netlink']), 'sockets cannot be dumped (turn on the *_DIAG kernel options or load the *_diag modules)'),
  f('ns_last_pid', 1, false, need(['has_ns_last_pid'], '/proc/sys/kernel/ns_last_pid is not writable'), 'tasks cannot be restored with their PIDs'),
  f('sock_peek_off', 1, false, need(['has_sock_peek_off'], 'getsockopt SO_PEEK_OFF fails'), 'socket queues cannot be dumped'),
  f('kcmp', 1, false, need(['has_kcmp'], 'the kcmp() system call is missing'), 'shared files and mm cannot be detected'),
  f('prctl', 1, false, need(['has_prctl_tid_address', 'has_prctl_mm_map'], 'prctl PR_GET_TID_ADDRESS or PR_SET_MM_MAP does not work'), 'the memory layout of a task cannot be restored'),
  f('fcntl', 1, false, need(['has_fcntl_owner_uids'], 'fcntl F_GETOWNER_UIDS does not work'), 'file owners cannot be dumped'),
  f('proc_stat', 1, false, need(['has_proc_stat_ext'], '/proc/PID/stat lacks its extension fields'), 'task memory boundaries cannot be dumped'),
  f('tcp', 1, false, need(['has_tcp_repair'], 'TCP repair mode (TCP_REPAIR, TCP_TIMESTAMP) does not work'), 'TCP connections cannot be checkpointed'),
  f('fdinfo_ext', 1, false, need(['has_fdinfo_eventfd', 'has_fdinfo_signalfd', 'has_fdinfo_eventpoll', 'has_fdinfo_inotify'], '/proc/PID/fdinfo lacks eventfd, signalfd, eventpoll or inotify details'), 'those file descriptors cannot be dumped'),
  f('unaligned_vmsplice', 1, false, need(['has_unaligned_vmsplice'], 'vmsplice() of unaligned buffers fails'), 'memory pages cannot be dumped through pipes'),
  f('tty', 1, false, need(['has_tty_locked_pty'], 'a locked pty slave can be opened'), 'terminals cannot be restored faithfully'),
  f('so_gets', 1, false, need(['has_so_gets'], 'getsockopt SO_GET_FILTER does not work'), 'socket filters cannot be dumped'),
  f('ipc', 1, false, need(['has_ipc_next_id'], '/proc/sys/kernel/sem_next_id is not writable'), 'SysV IPC objects cannot be restored with their ids'),
  f('sigqueueinfo', 1, false, need(['has_sigqueueinfo'], 'rt_sigqueueinfo with a positive si_code fails'), 'pending signals cannot be restored'),
  f('ptrace_peeksiginfo', 1, false, need(['has_ptrace_seize', 'has_ptrace_peeksiginfo', 'has_ptrace_getsigmask'], 'ptrace SEIZE, PEEKSIGINFO or GETSIGMASK does not work'), 'pending signals and signal masks cannot be dumped'),
  f('special_mapping_mremap', 1, false, (k) => (k.vdso === undefined ? 'the vDSO was not probed' : k.vdso.mremap_ok ? undefined : 'special mappings ([vvar], [vdso]) cannot be moved with mremap'), 'tasks cannot be restored with their vDSO in place'),

  // ---- category 2: required for specific cases (CRIU's --extra order)
  f('prctl_cat2', 2, false, need(['has_prctl_mm_map'], 'prctl PR_SET_MM_MAP is not supported'), 'the memory layout cannot be restored in one call'),
  f('seccomp_suspend', 2, true, need(['has_ptrace_suspend_seccomp'], 'ptrace PTRACE_O_SUSPEND_SECCOMP is not supported'), 'tasks with seccomp filters cannot be dumped'),
  f('seccomp_filters', 2, true, need(['has_ptrace_seccomp_get_filter'], 'ptrace PTRACE_SECCOMP_GET_FILTER is not supported'), 'seccomp filters cannot be dumped'),
  // crtools tracks written pages with soft-dirty where the kernel has it, else with async uffd
  // write-protect read back by PAGEMAP_SCAN: either one makes pre-dump and --track-mem work
  f('mem_dirty_track', 2, true, (k) => (k.has_dirty_track || k.has_pagemap_scan_dirty_track ? undefined : 'neither soft-dirty bits nor PAGEMAP_SCAN with async uffd write-protect can track written pages'),
    'memory snapshots (pre-dump, incremental dumps) will not work'),
  f('posix_timers', 2, false, need(['has_posix_timers_proc'], '/proc/PID/timers cannot be read'), 'POSIX timers cannot be dumped'),
  f('tun', 2, true, need(['has_tun'], '/dev/net/tun is missing or does not answer TUNGETFEATURES'), 'tun/tap devices cannot be checkpointed'),
  f('timerfd', 2, true, need(['has_timerfd'], 'timerfd details are missing from fdinfo'), 'timerfds cannot be dumped'),
  f('mnt_id', 2, true, need(['has_mnt_id'], 'fdinfo has no mnt_id'), 'files cannot be tied to their mounts'),
  f('aio_remap', 2, true, need(['has_aio_remap'], 'AIO rings cannot be moved with mremap'), 'tasks using AIO cannot be restored'),
  f('fdinfo_lock', 2, true, need(['has_fdinfo_lock'], 'flock()ed files show no lock: line in fdinfo'), 'file locks cannot be dumped'),
  f('clone_parent_vs_pid', 2, false, need(['has_clone_parent_newpid'], 'clone(CLONE_PARENT | CLONE_NEWPID) fails'), 'nested pid namespaces cannot be restored'),
  f('cgroupns', 2, true, (k) => (k.namespaces === undefined ? 'namespaces were not probed' : k.namespaces.cgroup ? undefined : 'no cgroup namespaces'), 'tasks in cgroup namespaces cannot be checkpointed'),
  f('tcp_window', 2, false, need(['has_tcp_repair_window'], 'getsockopt TCP_REPAIR_WINDOW fails in repair mode'), 'TCP window state is lost on restore'),
  f('tcp_half_closed', 2, true, need(['has_tcp_half_closed'], 'a half-closed TCP socket refuses TCP_REPAIR'), 'half-closed TCP connections cannot be checkpointed'),
  f('userns', 2, true, (k) => (k.namespaces === undefined ? 'namespaces were not probed' : k.namespaces.user && k.has_prctl_mm_map ? undefined : 'user namespaces or PR_SET_MM_MAP are missing'), 'tasks in user namespaces cannot be checkpointed'),
  f('loginuid', 2, true, (k) => (k.luid === 'LUID_FULL' ? undefined : k.luid === undefined ? 'loginuid was not probed' : 'loginuid cannot be unset and put back'), 'the audit loginuid of tasks is not restored'),
  f('can_map_vdso', 2, true, need(['can_map_vdso'], 'arch_prctl(ARCH_MAP_VDSO_64) is unknown'), 'the vDSO will be restored with mremap() instead'),
  f('uffd', 2, true, need(['has_uffd'], 'userfaultfd is unavailable'), 'lazy restore (--lazy-pages) will not work'),
  f('uffd-noncoop', 2, true, (k) => (k.has_uffd !== true ? 'userfaultfd is not supported' : ((k.uffd_features ?? 0n) & UFFD_NONCOOP_FEATURES) === UFFD_NONCOOP_FEATURES ? undefined : 'userfaultfd lacks the fork/remap/remove/unmap events'), 'lazy restore of forking or remapping tasks will not work'),
  f('sk_ns', 2, true, need(['sk_ns'], 'SIOCGSKNS (the netns of a socket) is not supported'), 'sockets of other network namespaces cannot be dumped'),
  f('kcmp_epoll', 2, true, need(['has_kcmp_epoll_tfd'], 'kcmp KCMP_EPOLL_TFD is not supported'), 'epoll targets cannot be matched to files'),
  f('net_diag_raw', 2, true, (k) => diagMissing(k, ['raw', 'raw6']), 'raw sockets cannot be dumped'),
  f('clone3_set_tid', 2, true, need(['has_clone3_set_tid'], 'clone3() with set_tid is not supported'), 'PIDs are restored through ns_last_pid, racily'),
  f('timens', 2, true, need(['has_timens'], 'no time namespaces (/proc/self/ns/time)'), 'monotonic and boot clocks jump on restore'),
  f('newifindex', 2, true, need(['has_newifindex'], 'rtnetlink ignores IFLA_NEW_IFINDEX'), 'network devices cannot be restored with their ifindex'),
  // (asked by name it is unsupported, as crtools' RPC FEATURE_CHECK answers: clients such as
  // CRIU's libcriu test_feature_check expect the two to agree)
  f('pidfd_store', 2, true, need(['has_pidfd_open', 'has_pidfd_getfd'], 'pidfd_open or pidfd_getfd is not supported'), 'the pidfd store for PID reuse detection will not work', 'crtools keeps no pidfd store (RPC pidfd_store_sk)'),
  f('ns_pid', 2, true, need(['has_nspid'], '/proc/PID/status has no NSpid'), 'PIDs in nested pid namespaces cannot be dumped'),
  f('network_lock_nftables', 2, true, need(['has_nftables_concat'], 'nftables-based network locking is not available (no nft tool: Debian package nftables)'), '--network-lock nftables will not work'),
  f('sockopt_buf_lock', 2, true, need(['has_sockopt_buf_lock'], 'SO_BUF_LOCK is not supported'), 'locked socket buffer sizes are not restored'),
  f('memfd_hugetlb', 2, true, need(['has_memfd_hugetlb'], 'memfd_create(MFD_HUGETLB) is not supported'), 'hugetlb memfds cannot be restored'),
  f('move_mount_set_group', 2, true, need(['has_move_mount_set_group'], 'move_mount(MOVE_MOUNT_SET_GROUP) is not supported'), 'mount propagation groups are restored the old way'),
  f('openat2', 2, true, need(['has_openat2'], 'openat2() is not supported'), 'paths are resolved without RESOLVE_* protections'),
  f('get_rseq_conf', 2, true, need(['has_ptrace_get_rseq_conf'], 'ptrace PTRACE_GET_RSEQ_CONFIGURATION fails'), 'tasks that registered an rseq area cannot be checkpointed'),
  f('ipv6_freebind', 2, true, need(['has_ipv6_freebind'], 'IPV6_FREEBIND is not supported'), 'IPv6 sockets bound to absent addresses cannot be restored'),
  f('pagemap_scan', 2, true, need(['has_pagemap_scan'], 'the PAGEMAP_SCAN ioctl is not supported'), 'dumps read /proc/PID/pagemap page by page (slower)'),
  // CRIU fails this check when no overlay can be mounted, as on a kernel without overlayfs
  f('overlayfs_maps', 2, true, (k) => (k.has_overlayfs === false ? 'overlayfs is not in this kernel' : need(['has_overlayfs_maps'], 'overlayfs dev:ino in /proc/PID/maps was not verified')(k)), 'files mapped from overlayfs may be misidentified'),
  f('timer_cr_ids', 2, true, need(['has_timer_cr_ids'], 'PR_TIMER_CREATE_RESTORE_IDS is not supported'), 'POSIX timers are restored with new ids'),
  f('pagemap_scan_guard_pages', 2, true, (k) => (k.has_madv_guard === true && k.has_pagemap_scan_guard_pages !== true ? 'PAGEMAP_SCAN cannot report guard regions (MADV_GUARD_INSTALL exists)' : k.has_pagemap_scan_guard_pages === undefined ? 'PAGEMAP_SCAN guard regions were not probed' : k.has_pagemap_scan_guard_pages ? undefined : 'PAGEMAP_SCAN cannot report guard regions'), 'guard regions are lost on restore'),
  f('apparmor_stacking', 2, true, (k) => (k.lsm !== 'APPARMOR' || k.apparmor_ns_dumping_enabled === true ? undefined : 'AppArmor namespace stacking is not available'), 'AppArmor namespaces cannot be dumped'),

  // ---- category 3: experimental
  // CRIU fails this check when no autofs can be mounted, as on a kernel without autofs
  f('autofs', 3, true, (k) => (k.has_autofs === false ? 'autofs is not in this kernel' : k.has_autofs_pipe_ino === undefined ? 'autofs was not probed' : k.has_autofs_pipe_ino ? undefined : 'autofs mounts lack pipe_ino'), 'autofs mounts cannot be checkpointed'),
  f('compat_cr', 3, true, need(['compat_cr'], 'compatible (32-bit) C/R is not supported by this kernel'), '32-bit tasks cannot be checkpointed'),

  // ---- category 4: optional, warned about only
  f('breakpoints', 4, true, need(['has_breakpoints'], 'a hardware breakpoint set with ptrace did not fire'), 'the parasite is stopped with single steps (slower)'),

  // ---- listed only (--feature NAME)
  f('tun_ns', 2, true, need(['tun_ns'], 'TUNGETDEVNETNS is not supported'), 'tun devices in other network namespaces cannot be dumped'),
  f('sk_unix_file', 2, true, need(['sk_unix_file'], 'SIOCUNIXFILE is not supported'), 'unix socket files cannot be tied to their sockets'),
  f('nsid', 2, true, need(['has_nsid'], 'RTM_GETNSID gives no id for a network namespace'), 'peer network namespaces cannot be identified'),
  f('link_nsid', 2, true, need(['has_link_nsid'], 'IFLA_LINK_NETNSID was not verified'), 'veth peers in other network namespaces cannot be restored'),
  f('external_net_ns', 2, true, () => undefined, 'nothing'),
  // (crtools saves and restores a namespace's rules through the nft tool, as CRIU through libnftables)
  f('nftables', 2, true, need(['has_nftables_concat'], 'no nft tool (Debian package nftables)'), 'nftables rules are not saved or restored'),
  f('has_ipt_legacy', 2, true, need(['has_ipt_legacy'], 'no iptables-legacy (and ip6tables-legacy) in PATH'), 'iptables-based network locking will not work'),
];

/** Features CRIU checks only when asked by name (--feature), never in a category sweep. */
const LISTED_ONLY = new Set(['tun_ns', 'sk_unix_file', 'nsid', 'link_nsid', 'external_net_ns', 'nftables', 'has_ipt_legacy']);

/** CRIU's feature list (criu check --feature NAME), in its order. */
export const FEATURE_LIST: readonly string[] = [
  'mnt_id', 'mem_dirty_track', 'aio_remap', 'timerfd', 'tun', 'tun_ns', 'userns', 'fdinfo_lock', 'seccomp_suspend',
  'seccomp_filters', 'loginuid', 'cgroupns', 'autofs', 'tcp_half_closed', 'compat_cr', 'uffd', 'uffd-noncoop',
  'can_map_vdso', 'sk_ns', 'sk_unix_file', 'net_diag_raw', 'nsid', 'link_nsid', 'kcmp_epoll', 'timens',
  'external_net_ns', 'clone3_set_tid', 'newifindex', 'nftables', 'has_ipt_legacy', 'pidfd_store', 'ns_pid',
  'apparmor_stacking', 'network_lock_nftables', 'sockopt_buf_lock', 'memfd_hugetlb', 'move_mount_set_group',
  'openat2', 'get_rseq_conf', 'ipv6_freebind', 'pagemap_scan', 'timer_cr_ids', 'overlayfs_maps', 'breakpoints',
  'pagemap_scan_guard_pages',
];

export type CheckCategory = 'required' | 'extra' | 'experimental' | 'all';

export interface JudgeOptions {
  /** what to check besides category 1 ('required' is always checked); combine with an array */
  category?: CheckCategory | CheckCategory[];
  /** check one feature of FEATURE_LIST; 'list' lists them */
  feature?: string;
}

export interface Finding {
  name: string;
  category: FeatureCategory;
  missing: string;
  breaks: string;
}

export interface JudgeResult {
  /** CRIU's exit code for this outcome: 0 good/supported/list, 1 otherwise */
  exitCode: 0 | 1;
  verdict: 'good' | 'maybe' | 'bad' | 'supported' | 'unsupported' | 'unknown-feature' | 'list';
  /** what CRIU prints to stdout (verdicts "Looks good…", "X is supported", the list) */
  stdout: string[];
  /** what CRIU prints as warnings/errors (missing features, "Does not look good.") */
  stderr: string[];
  findings: Finding[];
}

/** One line for a missing feature: what is missing and what it breaks. */
export function describeFinding(x: Finding): string {
  return `${x.name}: ${x.missing}; ${x.breaks}`;
}

function findingOf(feat: Feature, k: Kerndat): Finding | undefined {
  const missing = feat.test(k);
  return missing === undefined ? undefined : { name: feat.name, category: feat.category, missing, breaks: feat.breaks };
}

/** Decide what `criu check` says about a kerndat document. */
export function judge(k: Kerndat, opts: JudgeOptions = {}): JudgeResult {
  if (opts.feature !== undefined) {
    if (opts.feature === 'list') return { exitCode: 0, verdict: 'list', stdout: [...FEATURE_LIST], stderr: [], findings: [] };
    const feat = FEATURE_LIST.includes(opts.feature) ? FEATURES.find((x) => x.name === opts.feature) : undefined;
    if (!feat) return { exitCode: 1, verdict: 'unknown-feature', stdout: [], stderr: [`Unknown feature ${opts.feature}`], findings: [] };
    const fnd = findingOf(feat, k) ?? (feat.notCarried ? { name: feat.name, category: feat.category, missing: feat.notCarried, breaks: feat.breaks } : undefined);
    if (!fnd) {
      const how = feat.name === 'mem_dirty_track' ? (k.has_dirty_track ? ' (soft-dirty)' : ' (uffd-wp + PAGEMAP_SCAN, no soft-dirty on this kernel)') : '';
      return { exitCode: 0, verdict: 'supported', stdout: [`${feat.name} is supported${how}`], stderr: [], findings: [] };
    }
    return { exitCode: 1, verdict: 'unsupported', stdout: [], stderr: [describeFinding(fnd)], findings: [fnd] };
  }
  const cats = new Set(Array.isArray(opts.category) ? opts.category : [opts.category ?? 'required']);
  const extra = cats.has('extra') || cats.has('all');
  const experimental = cats.has('experimental') || cats.has('all');
  const stderr: string[] = [];
  const findings: Finding[] = [];
  // Category 1: stop at the first missing feature, as CRIU does.
  for (const feat of FEATURES.filter((x) => x.category === 1)) {
    const fnd = findingOf(feat, k);
    if (fnd) {
      findings.push(fnd);
      stderr.push(describeFinding(fnd), CHECK_BAD);
      return { exitCode: 1, verdict: 'bad', stdout: [], stderr, findings };
    }
  }
  let missing = false;
  const run = (cat: FeatureCategory, countIt: boolean) => {
    for (const feat of FEATURES.filter((x) => x.category === cat && !LISTED_ONLY.has(x.name))) {
      const fnd = findingOf(feat, k);
      if (!fnd) continue;
      findings.push(fnd);
      stderr.push(describeFinding(fnd));
      if (countIt) missing = true;
    }
  };
  if (extra) run(2, true);
  if (experimental) run(3, true);
  run(4, false); // optional: a warning, never the verdict
  return missing
    ? { exitCode: 1, verdict: 'maybe', stdout: [CHECK_MAYBE], stderr, findings }
    : { exitCode: 0, verdict: 'good', stdout: [CHECK_GOOD], stderr, findings };
}
