/**
 * criu_opts (an RPC request's options) into the engines' CriuOptions. Every field of criu_opts
 * is accounted for: the ones crtools carries out are mapped; the ones CriuOptions models but the
 * engines do not carry out yet go in under the same name (the engine refuses them by name); any
 * other field set away from its default is refused here, by its rpc.proto name. Nothing is
 * silently ignored. Descriptors (images_dir_fd, work_dir_fd) are the caller's: they are reached
 * through /proc/<peer pid>/fd/N, as CRIU does, and reopened as our own for the request's life.
 */
import { closeSync, openSync, constants as fsc } from 'node:fs';
import path from 'node:path';
import { CLONE_NEWNET, CPU_CAP, CPU_CAP_DEFAULT, CrtoolsError, ExitCode, unixSocketExternal, type CgroupMode, type CriuOptions } from '@crtools/common';
import type { CriuOpts } from './protocol.js';

/** criu_opts fields this layer turns into CriuOptions itself. */
const MAPPED = new Set<string>([
  'images_dir_fd', 'images_dir', 'work_dir_fd', 'pid', 'leave_running', 'leave_stopped', 'shell_job', 'file_locks',
  'log_level', 'log_file', 'log_to_stderr', 'notify_scripts', 'rst_sibling', 'inherit_fd', 'timeout', 'display_stats',
  'cpu_cap', 'config_file', 'ps', 'network_lock', 'pre_dump_mode', 'manage_cgroups_mode', 'join_ns', 'unix_sk_ino',
]);

/** criu_opts fields CriuOptions models under the same name: passed on, the engine decides (and refuses by name). */
const PASSED = new Set<string>([
  'ext_unix_sk', 'tcp_established', 'evasive_devices', 'root', 'parent_img', 'track_mem', 'auto_dedup', 'link_remap',
  'exec_cmd', 'ext_mnt', 'manage_cgroups', 'skip_mnt', 'enable_fs', 'external', 'freeze_cgroup', 'weak_sysctls',
  'lazy_pages', 'orphan_pts_master', 'tcp_close', 'lsm_profile', 'empty_ns', 'tcp_skip_in_flight', 'cg_root',
  'cgroup_yard', 'cgroup_props', 'cgroup_props_file', 'cgroup_dump_controller', 'veths', 'auto_ext_mnt', 'ext_masters', 'ext_sharing',
  'skip_file_rwx_check', 'force_irmap', 'irmap_scan_paths',
]);

/** rpc.proto's criu_cg_mode by number and name: CriuOptions' mode (DEFAULT: CRIU's, soft) */
const CG_MODES: Record<string, CgroupMode> = {
  0: 'ignore', 1: 'none', 2: 'props', 3: 'soft', 4: 'full', 5: 'strict', 6: 'soft',
  IGNORE: 'ignore', CG_NONE: 'none', PROPS: 'props', SOFT: 'soft', FULL: 'full', STRICT: 'strict', DEFAULT: 'soft',
};

/** rpc.proto's declared defaults that are not the type's zero (a field sent with one of these is "not set"). */
const PROTO_DEFAULTS: Record<string, unknown> = {
  images_dir_fd: -1, log_level: 2, cpu_cap: 0xffffffff, ghost_limit: 1048576, pre_dump_mode: 'SPLICE', network_lock: 'IPTABLES',
};

/** A field's value is its default: absent, false, 0, '', [], or rpc.proto's declared default. */
export function isDefault(name: string, v: unknown): boolean {
  if (v === undefined || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) return true;
  return name in PROTO_DEFAULTS && PROTO_DEFAULTS[name] === v;
}

function badRequest(field: string, why: string): CrtoolsError {
  return new CrtoolsError('RPC_BAD_OPTION', `${field}: ${why}`, { exitCode: ExitCode.USAGE, context: { option: field } });
}

/** The fields of a request crtools does not carry out, set away from their defaults (RPC names). */
export function unsupportedFields(opts: CriuOpts | undefined): string[] {
  if (!opts) return [];
  return Object.entries(opts)
    .filter(([k, v]) => !MAPPED.has(k) && !PASSED.has(k) && !isDefault(k, v))
    .map(([k]) => k);
}

/** A DUMP without pid (0 as absent, as libcriu sends it only when set): the client dumps itself. */
export function isSelfDump(r: CriuOpts | undefined): boolean {
  return r?.pid === undefined || r.pid === 0;
}

/** Reads a configuration file (criu_opts.config_file) into options; the cli provides it. */
export type ConfigReader = (file: string, command: 'dump' | 'restore' | 'check') => Partial<CriuOptions>;

export interface MapContext {
  command: 'dump' | 'pre-dump' | 'page-server' | 'restore' | 'check' | 'cpuinfo';
  /** the client: whose descriptors images_dir_fd / work_dir_fd are */
  peerPid: number;
  /** criu swrk: rst_sibling and inherit_fd are allowed (not in criu service) */
  swrk: boolean;
  /** the inode of our end of the client's connection (fstat): a self-dump records the client's end as connected to criu */
  serviceSkIno?: number;
  config?: ConfigReader;
  /**
   * Told of a failure once the request's log is known (its directory still open), to write it
   * there as CRIU logs what it refuses: a client that reads only the log (runc) learns why.
   */
  logFailure?: (logPath: string, logLevel: number, e: unknown) => void;
}

/** What a request runs with: the options, where its log goes, and the descriptors to close after. */
export interface MappedOptions {
  options: Partial<CriuOptions>;
  /** the log file's path (undefined: the log goes to stderr, or there is none) */
  logPath?: string;
  /** close the descriptors reopened for the request */
  release(): void;
}

/** The peer's descriptor N as a directory of ours: /proc/<our pid>/fd/M, M open until release(). */
function reopenDir(peerPid: number, fd: number, field: string, held: number[]): string {
  const theirs = `/proc/${peerPid}/fd/${fd}`;
  let mine: number;
  try {
    mine = openSync(theirs, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CrtoolsError('RPC_BAD_OPTION', `${field}: cannot open the client's descriptor ${fd} (${theirs}) as a directory: ${code}`, {
      exitCode: ExitCode.FAILED, context: { option: field, path: theirs }, cause: e,
    });
  }
  held.push(mine);
  return `/proc/${process.pid}/fd/${mine}`;
}

/**
 * criu_opts → CriuOptions for one request (throws RPC_BAD_OPTION / RPC_UNSUPPORTED_OPTION naming
 * the field). As CRIU: the configuration file, the directories and the log first, then the
 * rest; a failure from the log on is told to ctx.logFailure.
 */
export function mapOptions(opts: CriuOpts | undefined, ctx: MapContext): MappedOptions {
  const held: number[] = [];
  const release = () => {
    for (const fd of held.splice(0)) closeSync(fd);
  };
  const r = opts ?? ({ images_dir_fd: -1 } as CriuOpts);
  let log: Place['log'];
  try {
    const place = mapPlace(r, ctx, held);
    log = place.log;
    const off = unsupportedFields(opts);
    if (off.length) {
      throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', `RPC option ${off[0]} is not supported by crtools yet`, { exitCode: ExitCode.UNSUPPORTED, context: { option: off[0] } });
    }
    return { options: mapRest(r, ctx, place), logPath: log?.path, release };
  } catch (e) {
    if (log) ctx.logFailure?.(log.path, log.level, e);
    release();
    throw e;
  }
}

/** Where a request's images, work and log go, and what its configuration file says. */
interface Place {
  /** the options of the configuration file (they win over the request's) */
  conf: Partial<CriuOptions>;
  /** images_dir, work_dir, log_file, log_level */
  options: Partial<CriuOptions>;
  /** the log file, when the request has one */
  log?: { path: string; level: number };
}

function mapPlace(r: CriuOpts, ctx: MapContext, held: number[]): Place {
  const o: Partial<CriuOptions> = {};
  // the options a configuration file gives win over the request's (CRIU: "the RPC configuration
  // file overwrites RPC settings"), images and work directory and log file included
  const conf = r.config_file ? readConfig(r.config_file, ctx) : {};

  // images and work directory: a path from the configuration file, else the client's
  // descriptor, else images_dir as a path; CHECK needs neither
  let imagesDir: string | undefined = conf.images_dir;
  if (imagesDir === undefined && r.images_dir_fd !== undefined && r.images_dir_fd !== -1) imagesDir = reopenDir(ctx.peerPid, r.images_dir_fd, 'images_dir_fd', held);
  if (imagesDir === undefined && r.images_dir) imagesDir = r.images_dir;
  if (imagesDir === undefined && ctx.command !== 'check') throw badRequest('images_dir_fd', 'neither images_dir_fd nor images_dir was given');
  let workDir: string | undefined = conf.work_dir;
  if (workDir === undefined && r.work_dir_fd !== undefined) workDir = reopenDir(ctx.peerPid, r.work_dir_fd, 'work_dir_fd', held);
  if (imagesDir !== undefined) o.images_dir = imagesDir;
  if (workDir !== undefined) o.work_dir = workDir;

  // the log: log_file (a name in the work directory), or stderr (log_to_stderr), else criu.log
  // as CRIU does; CHECK logs only when a log_file is named
  let logFile: string | undefined = conf.log_file;
  if (logFile === undefined && r.log_file) {
    // (in CRIU's words, which clients look for: CRIU's test/others/rpc/errno.py does)
    if (r.log_file.includes('/')) throw badRequest('log_file', `No subdirs are allowed in log_file name ('${r.log_file}')`);
    logFile = r.log_file;
  }
  if (logFile === undefined && !r.log_to_stderr && ctx.command !== 'check') logFile = 'criu.log';
  // (as CRIU's: a CHECK that names a log file must say where it goes)
  if (ctx.command === 'check' && logFile !== undefined && !r.log_to_stderr && workDir === undefined && imagesDir === undefined) {
    throw badRequest('log_file', 'images_dir, images_dir_fd or work_dir_fd is required when using a log file');
  }
  if (logFile !== undefined) o.log_file = logFile;
  o.log_level = conf.log_level ?? r.log_level ?? 2;
  const dir = workDir ?? imagesDir;
  const log = logFile !== undefined && dir !== undefined ? { path: path.resolve(dir, logFile), level: o.log_level } : undefined;
  return { conf, options: o, ...(log ? { log } : {}) };
}

function mapRest(r: CriuOpts, ctx: MapContext, place: Place): Partial<CriuOptions> {
  const o: Partial<CriuOptions> = { ...place.options };
  if (ctx.command === 'dump' && isSelfDump(r)) {
    // CRIU's self-dump: no pid, the client (SO_PEERCRED) dumps itself, its connection to us
    // recorded as the one it reads its answer from once restored (our end's inode)
    o.pid = ctx.peerPid;
    if (ctx.serviceSkIno !== undefined) o.service_sk_ino = ctx.serviceSkIno;
  } else if (ctx.command === 'dump' || ctx.command === 'pre-dump') {
    if (isSelfDump(r)) throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', 'pid: a pre-dump without pid (the client pre-dumping itself) is not supported by crtools yet', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'pid' } });
    o.pid = r.pid;
  }
  if (r.leave_running) o.leave_running = true;
  if (r.leave_stopped) o.leave_stopped = true;
  if (r.shell_job) o.shell_job = true;
  if (r.file_locks) o.file_locks = true;
  if (r.notify_scripts) o.notify_scripts = true;
  if (r.timeout) o.timeout = r.timeout;
  if (r.display_stats) o.display_stats = true;
  if (r.rst_sibling) {
    if (!ctx.swrk) throw badRequest('rst_sibling', 'only criu swrk restores the root as a sibling (the service has no client process to hang it on)');
    o.rst_sibling = true;
  }
  if (r.inherit_fd?.length) {
    if (!ctx.swrk) throw badRequest('inherit_fd', 'only criu swrk inherits descriptors from its client');
    o.inherit_fd = r.inherit_fd.map((x) => ({ key: x.key, fd: x.fd }));
  }
  if (r.join_ns?.length) o.join_ns = r.join_ns.map((j) => ({ ns: j.ns, file: j.ns_file, ...(j.extra_opt ? { extra: j.extra_opt } : {}) }));
  if (r.empty_ns !== undefined && r.empty_ns & ~CLONE_NEWNET) {
    // (as CRIU: only the network namespace can be asked to be left empty)
    throw badRequest('empty_ns', `0x${r.empty_ns.toString(16)}: only CLONE_NEWNET (0x${CLONE_NEWNET.toString(16)}) can be left empty`);
  }
  if (r.cpu_cap !== undefined && r.cpu_cap !== 0xffffffff) {
    const bits = r.cpu_cap & (CPU_CAP.FPU | CPU_CAP.CPU | CPU_CAP.INS | CPU_CAP.IMAGE);
    o.cpu_cap = r.cpu_cap === 0 ? CPU_CAP.NONE : bits || CPU_CAP_DEFAULT;
  }
  if (r.pre_dump_mode !== undefined && r.pre_dump_mode !== 'SPLICE') {
    // criu_pre_dump_mode: SPLICE (1) or VM_READ (2), as --pre-dump-mode splice|read
    if (r.pre_dump_mode !== 'VM_READ' && r.pre_dump_mode !== 2) throw badRequest('pre_dump_mode', `${String(r.pre_dump_mode)}: SPLICE or VM_READ`);
    if (ctx.command === 'pre-dump') o.pre_dump_mode = 'read';
  }
  if (ctx.command === 'dump' && r.lazy_pages) {
    // as CRIU's service: with lazy_pages, ps names where the dump serves the lazy pages from the
    // frozen tree (its port; crtools also takes its address, CRIU listens on any), not a page
    // server to send pages to; the answer comes once the lazy-pages daemon has them all
    if (r.ps?.fd !== undefined) throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', 'ps.fd: a page-server socket handed by the client is not supported by crtools yet (crtools issue 16)', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'ps.fd' } });
    if (!r.ps?.port) throw badRequest('ps', 'lazy_pages needs ps.port to serve the lazy pages on');
    o.ps = { address: r.ps.address || '0.0.0.0', port: r.ps.port };
  } else if (ctx.command === 'page-server') {
    // the page server's own place: ps.address (any when unset) and ps.port (one the kernel picks when 0)
    if (r.ps?.fd !== undefined) throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', 'ps.fd: a page-server socket handed by the client is not supported by crtools yet (crtools issue 16)', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'ps.fd' } });
    o.ps = { address: r.ps?.address ?? '', port: r.ps?.port ?? 0 };
  } else if (r.ps && Object.values(r.ps).some((v) => v !== undefined)) {
    // a DUMP's page server (CRIU: use_page_server with ps.address and ps.port); ps.fd (a
    // socket the client connected itself) and a restore's ps (lazy pages) are not carried out
    if (ctx.command !== 'dump' && ctx.command !== 'pre-dump') throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', `ps: a page server for ${ctx.command} (lazy pages) is not supported by crtools yet (crtools issue 16)`, { exitCode: ExitCode.UNSUPPORTED, context: { option: 'ps' } });
    if (r.ps.fd !== undefined) throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', 'ps.fd: a page-server socket handed by the client is not supported by crtools yet (crtools issue 16)', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'ps.fd' } });
    if (!r.ps.address || !r.ps.port) throw badRequest('ps', 'a page server needs both address and port');
    o.ps = { address: r.ps.address, port: r.ps.port };
  }
  if (r.network_lock !== undefined && !isDefault('network_lock', r.network_lock)) {
    const v = r.network_lock as unknown;
    const m = typeof v === 'number' ? (['', 'iptables', 'nftables', 'skip'][v] ?? String(v)) : String(v).toLowerCase();
    if (m !== 'iptables' && m !== 'nftables' && m !== 'skip') throw badRequest('network_lock', `${r.network_lock} is no method CRIU knows`);
    o.network_lock = m;
  }
  if (r.manage_cgroups_mode !== undefined) {
    const mode = CG_MODES[String(r.manage_cgroups_mode)];
    if (!mode) throw badRequest('manage_cgroups_mode', `${String(r.manage_cgroups_mode)} is no mode CRIU knows`);
    // (as CRIU: a mode asks for the cgroups to be managed)
    o.manage_cgroups = true;
    o.manage_cgroups_mode = mode;
  } else if (r.manage_cgroups === false) {
    // (as CRIU: manage_cgroups sent false is the ignore mode; not sent, its default, soft)
    o.manage_cgroups_mode = 'ignore';
  }
  if (ctx.command === 'restore') o.restore_detached = true; // as CRIU: the answer goes back once the tasks run

  // the fields CriuOptions models and the engines decide on
  const passed = r as unknown as Record<string, unknown>;
  const out = o as Record<string, unknown>;
  for (const k of PASSED) {
    const v = passed[k];
    if (isDefault(k, v)) continue;
    if (k === 'ext_mnt') out[k] = (v as { key: string; val: string }[]).map((m) => ({ key: m.key, val: m.val }));
    else if (k === 'veths') out[k] = (v as { if_in: string; if_out: string }[]).map((p) => ({ if_in: p.if_in, if_out: p.if_out }));
    else if (k === 'cg_root') out[k] = (v as { ctrl?: string; path: string }[]).map((c) => ({ ...(c.ctrl ? { ctrl: c.ctrl } : {}), path: c.path }));
    else out[k] = v;
  }
  // (as CRIU: with ext_unix_sk, each unix_sk_ino names a socket of the tree whose peer may be
  // outside it, what `--ext-unix-sk=INO` and `--external unix[INO]` say on the command line;
  // without ext_unix_sk they name nothing)
  if (r.ext_unix_sk && r.unix_sk_ino?.length) {
    const ext = r.unix_sk_ino.map((u) => {
      const e = unixSocketExternal(u.inode);
      if (e === undefined) throw badRequest('unix_sk_ino', `${u.inode} is no socket inode`);
      return e;
    });
    o.external = [...(o.external ?? []), ...ext];
  }
  // the configuration file's remaining options last: they win
  const { images_dir: _i, work_dir: _w, log_file: _l, ...rest } = place.conf;
  Object.assign(o, rest);
  return o;
}

function readConfig(file: string, ctx: MapContext): Partial<CriuOptions> {
  if (!ctx.config) throw new CrtoolsError('RPC_UNSUPPORTED_OPTION', 'config_file: this server reads no configuration files', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'config_file' } });
  // (a file read for CPUINFO_* gives where the log goes, as for CHECK)
  const as = ctx.command === 'cpuinfo' ? 'check' : ctx.command === 'pre-dump' || ctx.command === 'page-server' ? 'dump' : ctx.command;
  return ctx.config(file, as);
}
