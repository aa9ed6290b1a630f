/**
 * The one description of what a dump or a restore can be asked, modelled on CRIU's
 * `criu_opts` (rpc.proto): the same names, the same defaults. The engines take it; the
 * command line, a config file and an RPC request are three parsers into it. A field the
 * engines do not carry out yet is refused by name (`refuseUnsupported`), never ignored.
 */
import { CrtoolsError } from './error.js';
import { ExitCode } from './exit-codes.js';
import { CPU_CAP_DEFAULT } from './cpu-cap.js';
import { Refusals } from './refusals.js';

/** CRIU's --ghost-limit when not given: 1 MiB. */
export const GHOST_LIMIT_DEFAULT = 1 << 20;

export interface InheritFd {
  /** the resource as the images name it: `pipe:[INO]`, `socket:[INO]`, or a path without its leading slash */
  key: string;
  /** the caller's descriptor that stands in for it */
  fd: number;
}

export interface CriuOptions {
  /** -D: the images directory */
  images_dir: string;
  /** -W: where logs, pidfiles and stats go (default: images_dir) */
  work_dir?: string;
  /** -t: the root of the tree to dump */
  pid?: number;
  /**
   * An RPC self-dump (a DUMP without pid: the client dumps itself): the inode of criu's own end
   * of the client's connection (CRIU's service_sk_ino). The client's socket connected to it is
   * recorded closed, without a peer, marked SERVICE: restored holding the answer `restored: true`.
   * Not an option of criu_opts nor of the command line: the RPC server sets it.
   */
  service_sk_ino?: number;
  /** -o: log file, relative to work_dir; undefined: stderr */
  log_file?: string;
  /** -v: 0 none, 1 errors, 2 warnings (default), 3 info, 4 debug */
  log_level: number;
  /** -R: leave the tree running after a dump */
  leave_running: boolean;
  /** -s: leave the tasks stopped after a dump or a restore */
  leave_stopped: boolean;
  /** -j: the root is a shell's job (its session, maybe its group, led from outside) */
  shell_job: boolean;
  /** --file-locks: dump and restore the file locks the tree holds */
  file_locks: boolean;
  /** --cpu-cap: CPU_CAP bits (cpu-cap.ts): the rules a restore checks; IMAGE: dump writes cpuinfo.img, restore checks it */
  cpu_cap: number;
  /** --inherit-fd fd[N]:KEY, each */
  inherit_fd: InheritFd[];
  /** -S/--restore-sibling: the root comes back as a sibling of the caller, not its child */
  rst_sibling: boolean;
  /** -d/--restore-detached: return once the tasks run (the RPC always does) */
  restore_detached: boolean;
  /** --pidfile: write the restored root's pid here (relative to work_dir) */
  pidfile?: string;
  /** --display-stats */
  display_stats: boolean;
  /** --timeout: seconds a dump may take to freeze the tree (0: the default) */
  timeout: number;
  /** --action-script (CLI) / notify_scripts (RPC): call the notify hook */
  notify_scripts: boolean;
  /** --ghost-limit: the largest unlinked file a dump keeps whole (ghost file), in bytes */
  ghost_limit: number;
  /** --page-server --address A --port P (RPC: ps): a dump sends its pages to this page server, the other images stay in images_dir */
  ps?: { address: string; port: number };
  /**
   * --page-server with --lazy-pages (CRIU's use_page_server): the pages that are not lazy go to
   * the page server at `ps`, and the lazy ones are then served on that same address and port.
   * Without lazy_pages, `ps` alone says that a page server is used.
   */
  use_page_server: boolean;
  /** --pre-dump-mode: how a pre-dump copies pages: 'splice' (while the tree is frozen, written after) or 'read' (after it runs again) */
  pre_dump_mode?: 'splice' | 'read';
  /** --tcp-established: dump and restore established TCP connections (TCP_REPAIR) */
  tcp_established: boolean;
  /** --tcp-close: connections come back closed (dump: no stream kept; restore: made closed) */
  tcp_close: boolean;
  /** --skip-in-flight: dump a listener with connections not accepted yet (they are lost) */
  tcp_skip_in_flight: boolean;
  /** --network-lock: how a dump keeps its connections' peers from seeing a reset (criu.8's default: iptables) */
  network_lock: 'iptables' | 'nftables' | 'skip';

  /** --skip-file-rwx-check: restore does not hold a file's rwx bits to the recorded mode (its type and other bits still are) */
  skip_file_rwx_check: boolean;

  /**
   * --force-irmap: a watched or marked file (inotify, fanotify) whose kernel handle does not open
   * is looked for by its device and inode under the irmap scan paths, its path written (without
   * it such a watch gets no path, as in CRIU); one not found fails the dump
   */
  force_irmap: boolean;
  /** --irmap-scan-path DIR (repeatable): where --force-irmap looks first, before CRIU's own list */
  irmap_scan_paths: string[];

  // ---- asked for by clients, not carried out yet: refused by name when set
  ext_unix_sk: boolean;
  evasive_devices: boolean;
  link_remap: boolean;
  manage_cgroups: boolean;
  /** --manage-cgroups=MODE (RPC manage_cgroups_mode): what is done with the cgroups' directories and properties (CRIU's modes) */
  manage_cgroups_mode?: CgroupMode;
  /** --cgroup-root [CTRL:]PATH (RPC cg_root): where the dumped cgroups of a controller (all: no ctrl) go on restore; on dump, where its directories are walked from */
  cg_root: { ctrl?: string; path: string }[];
  /** --cgroup-yard PATH (RPC cgroup_yard): a directory with one mount per cgroup hierarchy, used instead of crtools's own mounts */
  cgroup_yard?: string;
  /** --cgroup-props TEXT (RPC cgroup_props): changes to the properties a dump saves per controller, CRIU's YAML subset */
  cgroup_props?: string;
  /** --cgroup-props-file FILE (RPC cgroup_props_file): the same, read from FILE (after cgroup_props) */
  cgroup_props_file?: string;
  /** --cgroup-dump-controller NAME (repeatable; RPC cgroup_dump_controller): only these controllers' directories are dumped */
  cgroup_dump_controller: string[];
  /** --track-mem: track written pages so that a later dump with a parent writes only those */
  track_mem: boolean;
  auto_dedup: boolean;
  lazy_pages: boolean;
  orphan_pts_master: boolean;
  weak_sysctls: boolean;
  root?: string;
  /** --prev-images-dir (RPC parent_img): the previous (pre-)dump, relative to images_dir; linked as `parent` */
  parent_img?: string;
  freeze_cgroup?: string;
  lsm_profile?: string;
  /** --empty-ns: CLONE_NEW* bits of the namespaces created empty on restore and not dumped (CRIU takes CLONE_NEWNET only) */
  empty_ns: number;
  /** --join-ns NS:{PID|NS_FILE}[,EXTRA] (RPC join_ns): existing namespaces the restored tree lives in */
  join_ns: JoinNamespace[];
  external: string[];
  ext_mnt: { key: string; val: string }[];
  /**
   * --external mnt[] / --ext-mount-map auto (RPC auto_ext_mnt): the dump finds external mounts by
   * itself (binds of criu's mounts), the restore binds them back from where they were found;
   * ext_masters (mnt[]:m, --enable-external-masters) and ext_sharing (mnt[]:s,
   * --enable-external-sharing) let slaves and shared mounts be found so too
   */
  auto_ext_mnt: boolean;
  ext_masters: boolean;
  ext_sharing: boolean;
  /**
   * --veth-pair IN=OUT, --external veth[IN]:OUT[@BRIDGE] (RPC veths): at restore, the veth IN
   * of the tree's network namespace gets its peer, named OUT, in criu's own namespace (put in
   * BRIDGE and brought up when one is named)
   */
  veths: { if_in: string; if_out: string }[];
  skip_mnt: string[];
  enable_fs: string[];
  exec_cmd: string[];
}

export type CriuOptionName = keyof CriuOptions;

/** One --join-ns: the kind (net, uts, ipc, time, user, mnt, pid), a pid or a namespace file, the user namespace's extra options. */
export interface JoinNamespace {
  ns: string;
  file: string;
  extra?: string;
}

/** CLONE_NEWNET: the one namespace CRIU lets a dump leave empty (--empty-ns net, RPC empty_ns). */
export const CLONE_NEWNET = 0x40000000;

/** CRIU's --manage-cgroups modes (criu.8), as CriuOptions spells them. */
export const CGROUP_MODES = ['ignore', 'none', 'props', 'soft', 'full', 'strict'] as const;
export type CgroupMode = (typeof CGROUP_MODES)[number];

/** CRIU's defaults for every field. */
export function defaultOptions(): CriuOptions {
  return {
    images_dir: '.', log_level: 2, leave_running: false, leave_stopped: false, shell_job: false, file_locks: false,
    cpu_cap: CPU_CAP_DEFAULT, inherit_fd: [], rst_sibling: false, restore_detached: false, display_stats: false,
    timeout: 0, notify_scripts: false, ghost_limit: GHOST_LIMIT_DEFAULT, use_page_server: false,
    tcp_established: false, tcp_close: false, tcp_skip_in_flight: false, network_lock: 'iptables', skip_file_rwx_check: false, force_irmap: false, irmap_scan_paths: [], ext_unix_sk: false, evasive_devices: false, link_remap: false,
    manage_cgroups: false, track_mem: false, auto_dedup: false, lazy_pages: false, orphan_pts_master: false,
    weak_sysctls: false, empty_ns: 0, join_ns: [], cgroup_dump_controller: [], external: [], ext_mnt: [], auto_ext_mnt: false, ext_masters: false, ext_sharing: false, veths: [], cg_root: [], skip_mnt: [], enable_fs: [], exec_cmd: [],
  };
}

/** A complete options object: the given fields over CRIU's defaults. */
export function criuOptions(given: Partial<CriuOptions> = {}): CriuOptions {
  const o = defaultOptions();
  for (const [k, v] of Object.entries(given)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  return o;
}

/** The fields set away from their defaults. */
export function changedOptions(o: CriuOptions): CriuOptionName[] {
  const d = defaultOptions() as unknown as Record<string, unknown>;
  return (Object.keys(o) as CriuOptionName[]).filter((k) => JSON.stringify(o[k]) !== JSON.stringify(d[k]));
}

/** The fields set away from their defaults that a command does not carry out (every field outside `supported`). */
export function unsupportedOptions(o: CriuOptions, supported: readonly CriuOptionName[]): CriuOptionName[] {
  return changedOptions(o).filter((k) => !supported.includes(k));
}

/**
 * Refuse, naming the first one, the fields set away from their defaults that `command`
 * does not carry out (every field outside `supported`).
 */
export function refuseUnsupported(o: CriuOptions, command: string, supported: readonly CriuOptionName[], refusals = new Refusals()): void {
  // each option on its own: the first is thrown, unless the refusals are gathered (a preflight names them all)
  for (const option of unsupportedOptions(o, supported)) {
    refusals.refuse(new CrtoolsError('UNSUPPORTED_OPTION', `${command}: option ${option} is not supported by crtools yet`, {
      context: { option },
      exitCode: ExitCode.UNSUPPORTED,
    }));
  }
}

/**
 * The points at which CRIU runs action scripts and sends RPC notify messages, under
 * CRIU's names (CRTOOLS_SCRIPT_ACTION, criu_notify.script).
 */
export type NotifyAction =
  | 'pre-dump' | 'post-dump' | 'network-lock' | 'network-unlock'
  | 'pre-restore' | 'setup-namespaces' | 'post-setup-namespaces' | 'post-restore' | 'pre-resume' | 'post-resume'
  | 'orphan-pts-master' | 'status-ready' | 'query-ext-files';

/**
 * What a hook may answer: at query-ext-files (RPC only, as CRIU's), the external objects the
 * client adds to the dump (criu_opts.external of its NOTIFY answer).
 */
export interface NotifyReply {
  external?: string[];
}

/** What the engines call at each action point; a throw (or a rejection) fails the operation. */
export type Notify = (action: NotifyAction, info: { pid?: number }) => void | NotifyReply | Promise<void | NotifyReply>;

/**
 * `--ext-unix-sk=INO` (and RPC's unix_sk_ino with ext_unix_sk) as the external it stands for,
 * `unix[INO]`; undefined when INO is no socket inode (an integer from 1 to 2^32 - 1).
 */
export function unixSocketExternal(ino: number): string | undefined {
  return Number.isInteger(ino) && ino > 0 && ino <= 0xffffffff ? `unix[${ino}]` : undefined;
}
