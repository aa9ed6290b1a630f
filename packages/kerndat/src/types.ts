/**
 * The kerndat document: what the running kernel can do, as measured by trying.
 * Keys follow CRIU's kerndat fields (criu/include/kerndat.h) where one exists.
 * In TypeScript 64-bit values are bigint; in JSON they are '0x…' hex strings.
 * A probe that could not run leaves its keys out and says why in `errors`.
 */

export const KERNDAT_SCHEMA = 'crtools-kerndat/1';
/**
 * Raised whenever a probe's answer changes meaning or is corrected, so a cached
 * document probed by an older crtools is probed again (2: the zero page is
 * verified, autofs/overlayfs absence is an answer; 3: has_pagemap_guard_bit).
 */
export const KERNDAT_PROBE_REVISION = 3;

export interface SpecialMapping {
  name: string;
  start: bigint;
  end: bigint;
  size: bigint;
}

export interface VdsoInfo {
  /** [vvar], [vvar_vclock], [vdso], [vsyscall]: in address order, as /proc/self/maps shows them */
  areas: SpecialMapping[];
  /** names of the areas, in address order */
  order: string[];
  vvar_size: bigint;
  vvar_vclock_size: bigint;
  vdso_size: bigint;
  has_vvar_vclock: boolean;
  has_vsyscall: boolean;
  /** offsets of the vDSO's exported symbols from the start of [vdso] */
  symbols: Record<string, bigint>;
  /** the vDSO's ELF says x86_64 / ET_DYN */
  elf_ok: boolean;
  /** moving [vvar]+[vvar_vclock]+[vdso] with mremap in a child, then taking a signal, worked */
  mremap_ok: boolean;
}

export interface XsaveInfo {
  /** XCR0: the user state components the OS enabled */
  xcr0: bigint;
  /** cpuid(0xd,0).ebx: XSAVE area size for the enabled components */
  size: number;
  /** cpuid(0xd,0).ecx: size for every supported component */
  max_size: number;
  /** names of the enabled components */
  features: string[];
  /** enabled components above the legacy area (bit >= 2): size and offset from cpuid(0xd, bit) */
  components?: Array<{ bit: number; name: string; size: number; offset: number }>;
  /** the NT_X86_XSTATE regset size ptrace returns for a child */
  ptrace_size: number;
}

export interface SockDiag {
  unix: boolean;
  tcp: boolean;
  udp: boolean;
  tcp6: boolean;
  udp6: boolean;
  raw: boolean;
  raw6: boolean;
  packet: boolean;
  netlink: boolean;
}

export interface RseqConf {
  rseq_abi_pointer: bigint;
  rseq_abi_size: number;
  signature: number;
  flags: number;
}

export type Luid = 'LUID_NONE' | 'LUID_READ' | 'LUID_FULL';
export type Pmap = 'PM_DISABLED' | 'PM_FLAGS_ONLY' | 'PM_FULL';
export type Lsm = 'NO_LSM' | 'SELINUX' | 'APPARMOR';

export interface Kerndat {
  schema: typeof KERNDAT_SCHEMA;
  arch: string;
  release: string;
  boot_id: string;
  probed_at: string;
  /** names of the probes that ran (a cache missing any current probe is stale) */
  probes: string[];
  /** KERNDAT_PROBE_REVISION of the crtools that probed (a cache from another revision is stale) */
  probe_revision?: number;

  // memory
  page_size?: number;
  task_size?: bigint;
  mmap_min_addr?: bigint;
  /**
   * CRIU's flag: /proc/PID/maps shows grows-down areas above their real start
   * (the guard gap is hidden from maps: kernels before 4.12, some distro kernels).
   * false on 4.12+ kernels, which show the real start.
   */
  stack_guard_gap_hidden?: boolean;
  /** bytes between the real start of a MAP_GROWSDOWN area and the start /proc/PID/maps shows (0, 4096 or 1 MiB) */
  stack_guard_gap?: number;
  /** read faults of private anonymous memory map the shared zero page (false: each gets a page of its own) */
  has_zero_page?: boolean;
  /** the zero page's PFN, only where has_zero_page is true (pages mapped to it are not dumped) */
  zero_page_pfn?: bigint;
  pmap?: Pmap;
  has_dirty_track?: boolean;
  has_pagemap_scan?: boolean;
  has_pagemap_scan_guard_pages?: boolean;
  has_madv_guard?: boolean;
  /** a guard page shows bit 58 (PM_GUARD_REGION) in its /proc/PID/pagemap entry (6.15+); probed where has_madv_guard */
  has_pagemap_guard_bit?: boolean;
  has_uffd?: boolean;
  uffd_features?: bigint;
  /** names of the UFFD_FEATURE_* bits of uffd_features */
  uffd_feature_names?: string[];
  /** async uffd write-protect + PAGEMAP_SCAN PAGE_IS_WRITTEN tracks written pages (dirty tracking without soft-dirty) */
  has_pagemap_scan_dirty_track?: boolean;
  /** how this kernel lets a dump track written pages: soft-dirty bits, else uffd-wp + PAGEMAP_SCAN, else none */
  mem_dirty_track_method?: 'soft-dirty' | 'uffd-wp' | 'none';
  has_thp_disable?: boolean;
  has_memfd?: boolean;
  has_memfd_hugetlb?: boolean;
  has_memfd_secret?: boolean;
  has_aio_remap?: boolean;
  /** mmap(MAP_DROPPABLE) works (6.11+) */
  has_map_droppable?: boolean;
  /** mseal(2) seals a mapping against munmap (6.10+) */
  has_mseal?: boolean;
  /** st_dev of anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS areas and SysV shm) */
  shmem_dev?: number;
  /** st_dev of hugetlbfs memfds, by huge page size ('2M', '1G'); sizes the kernel refuses are absent */
  hugetlb_dev?: Record<string, number>;

  // vdso
  vdso?: VdsoInfo;
  can_map_vdso?: boolean;
  /** CRIU's flag: a moved [vdso] is still named [vdso] in /proc/PID/maps */
  vdso_hint_reliable?: boolean;
  compat_cr?: boolean;

  // tasks
  has_clone3_set_tid?: boolean;
  has_pidfd_open?: boolean;
  has_pidfd_getfd?: boolean;
  /** process_mrelease(2) (5.15+): a killed process's memory freed by the killer (the dump's kill of a large tree) */
  has_process_mrelease?: boolean;
  has_ns_last_pid?: boolean;
  has_kcmp?: boolean;
  has_kcmp_epoll_tfd?: boolean;
  has_prctl_tid_address?: boolean;
  has_prctl_mm_map?: boolean;
  has_rseq?: boolean;
  has_ptrace_get_rseq_conf?: boolean;
  libc_rseq_conf?: RseqConf;
  has_ptrace_seize?: boolean;
  has_ptrace_getsigmask?: boolean;
  has_ptrace_peeksiginfo?: boolean;
  has_ptrace_suspend_seccomp?: boolean;
  has_ptrace_seccomp_get_filter?: boolean;
  has_breakpoints?: boolean;
  has_sigqueueinfo?: boolean;
  has_clone_parent_newpid?: boolean;
  has_membarrier_get_registrations?: boolean;
  has_close_range?: boolean;
  has_timer_cr_ids?: boolean;
  has_posix_timers_proc?: boolean;
  has_proc_stat_ext?: boolean;
  has_nspid?: boolean;
  has_timens?: boolean;
  luid?: Luid;
  namespaces?: Record<string, boolean>;
  last_cap?: number;
  cap_eff?: bigint;
  /** CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN is effective (what CRIU needs to run at all) */
  has_cap_checkpoint_restore?: boolean;
  lsm?: Lsm;
  lsm_list?: string[];
  apparmor_ns_dumping_enabled?: boolean;
  cgroup_version?: 'v1' | 'v2' | 'hybrid';
  sysctl_nr_open?: number;

  // files
  has_map_files?: boolean;
  has_fdinfo_lock?: boolean;
  has_fdinfo_eventfd?: boolean;
  has_fdinfo_signalfd?: boolean;
  has_fdinfo_eventpoll?: boolean;
  has_fdinfo_inotify?: boolean;
  has_mnt_id?: boolean;
  has_timerfd?: boolean;
  has_tty_locked_pty?: boolean;
  has_unaligned_vmsplice?: boolean;
  has_fcntl_owner_uids?: boolean;
  has_ipc_next_id?: boolean;
  has_inotify_setnextwd?: boolean;
  has_fsopen?: boolean;
  has_openat2?: boolean;
  has_move_mount_set_group?: boolean;
  /** the kernel knows the autofs filesystem (CRIU's has_autofs); false: no pipe_ino answer either */
  has_autofs?: boolean;
  has_autofs_pipe_ino?: boolean;
  /** the kernel knows the overlay filesystem; false: has_overlayfs_maps is not asked */
  has_overlayfs?: boolean;
  /** /proc/PID/maps shows the same dev:ino as stat() for a file mapped from overlayfs */
  has_overlayfs_maps?: boolean;

  // network
  ipv6?: boolean;
  has_tcp_repair?: boolean;
  has_tcp_half_closed?: boolean;
  has_tcp_repair_window?: boolean;
  sock_diag?: SockDiag;
  has_sock_peek_off?: boolean;
  has_so_gets?: boolean;
  sk_ns?: boolean;
  sk_unix_file?: boolean;
  has_ipv6_freebind?: boolean;
  has_sockopt_buf_lock?: boolean;
  has_tun?: boolean;
  tun_ns?: boolean;
  has_newifindex?: boolean;
  has_nsid?: boolean;
  has_link_nsid?: boolean;
  has_nftables_concat?: boolean;
  /** iptables-legacy (and ip6tables-legacy when IPv6 is on) are installed */
  has_ipt_legacy?: boolean;

  // cpu
  xsave?: XsaveInfo;
  has_shstk?: boolean;

  /** probe name -> why it could not answer */
  errors: Record<string, string>;
}

/** What one probe adds to the document. */
export type KerndatPart = Partial<Omit<Kerndat, 'schema' | 'errors'>>;
