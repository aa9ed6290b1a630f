import { defineCommand } from 'citty';
import { CGROUP_MODES, CLONE_NEWNET, CrtoolsError, ExitCode, Refusals, type CgroupMode, type CriuOptions } from '@crtools/common';
import { checkDump, dump, dumpExternals } from '@crtools/dump';
import { parsePort } from '@crtools/pagemap';
import { actionScripts } from './action-scripts.js';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { CPU_CAP_ARG, cpuCapOf } from './cpu-cap.js';
import { extUnixSkExternals, networkLockOf, optionalValueOption, parseSize, repeatedOption, verbosityOf } from './flags.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';
import { cgroupOptionsOf, emptyNsOf, manageCgroupsOf, mountExternals, autoExtMountsOf } from './container-options.js';
import { dumpStatsText } from './stats.js';
import { interruptible } from './interrupt.js';

/** criu dump's own options (criu.8 names); the not-yet ones are added beside them */
export const DUMP_ARGS = {
  tree: { type: 'string', alias: 't', description: 'pid of the root of the tree to dump', required: true },
  'images-dir': { type: 'string', alias: 'D', description: 'directory to write the images to', default: '.' },
  'work-dir': { type: 'string', alias: 'W', description: 'directory for the log (default: the images dir)' },
  'log-file': { type: 'string', alias: 'o', description: 'log file name (in the work dir)' },
  'leave-running': { type: 'boolean', alias: 'R', description: 'leave the tree running after the dump' },
  'leave-stopped': { type: 'boolean', alias: 's', description: 'leave the tree stopped after the dump' },
  'file-locks': { type: 'boolean', alias: 'l', description: 'keep the file locks (flock, POSIX, OFD) the tree holds' },
  'shell-job': { type: 'boolean', alias: 'j', description: 'the root is a job of a shell: its session (and group) is led from outside the tree' },
  'display-stats': { type: 'boolean', description: 'print the dump statistics on stdout (they are in stats-dump too)' },
  timeout: { type: 'string', description: 'seconds the tree may take to freeze (default: CRIU\'s)' },
  'ghost-limit': { type: 'string', description: 'the largest unlinked file kept whole, SIZE[K|M|G] (default 1M)' },
  'ghost-fiemap': { type: 'boolean', description: "accepted: a ghost file's data extents are found with SEEK_DATA/SEEK_HOLE (what CRIU falls back to where FIEMAP is not supported); the restored file is the same" },
  'link-remap': { type: 'boolean', description: 'an open file whose name was removed while it keeps other links gets a hard link link_remap.N beside it (removed by the restore)' },
  'force-irmap': { type: 'boolean', description: "a watched file (inotify, fanotify) whose kernel handle does not open is looked for under the irmap scan paths and written by its path; one not found fails the dump" },
  'irmap-scan-path': { type: 'string', description: 'with --force-irmap: a directory to look in first (repeatable)' },
  verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
  'action-script': { type: 'string', description: 'run this script at each action point (pre-dump, post-dump); repeatable' },
  'cpu-cap': CPU_CAP_ARG,
  'page-server': { type: 'boolean', description: 'send the pages to a page server (--address, --port) instead of the images directory' },
  address: { type: 'string', description: 'with --page-server: the page server host; with --lazy-pages: the address the lazy pages are served on (default: any)' },
  port: { type: 'string', description: 'with --page-server: the page server port; with --lazy-pages: the port the lazy pages are served on' },
  'lazy-pages': { type: 'boolean', description: 'leave the lazy pages out of the images: after the dump they are served on --address:--port to `criu lazy-pages --page-server` until it has them all' },
  'track-mem': { type: 'boolean', description: 'track written pages (uffd write-protect + PAGEMAP_SCAN here) so that a dump with --prev-images-dir writes only those' },
  'prev-images-dir': { type: 'string', description: 'the previous (pre-)dump, relative to the images dir: pages unchanged since stay there (linked as `parent`)' },
  'tcp-established': { type: 'boolean', description: 'carry established TCP connections (TCP_REPAIR; both dump and restore need it)' },
  'tcp-close': { type: 'boolean', description: 'the TCP connections come back closed' },
  'skip-in-flight': { type: 'boolean', description: 'dump listeners with connections not accepted yet (those are lost)' },
  'network-lock': { type: 'string', description: 'how the connections are kept from the peers while dumped: iptables (default), nftables or skip' },
  'ext-unix-sk': { type: 'boolean', alias: 'x', description: 'a unix datagram socket may stay connected to a named one outside the tree (connected to it again on restore); =INO[,INO...]: also each socket with one of these inodes may have its peer outside the tree, as --external unix[INO]' },
  external: { type: 'string', description: 'unix[INO]: the socket of the tree with this inode may have its peer outside the tree (restored with --inherit-fd); tty[RDEV:DEV]: the terminal with this device and filesystem (hex, as stat(2) gives them) is outside the tree (restored from --inherit-fd fd[N]:tty[RDEV:DEV]); net[INO]:KEY: the network namespace with this inode is the caller\'s (not dumped; joined from --inherit-fd fd[N]:KEY on restore); mnt[KEY]:VAL: as --ext-mount-map; mnt[][:m|:s]: every bind of a mount of criu\'s namespace is external, found by itself (m: slaves too, s: shared ones too); other forms are not supported yet; repeatable' },
  'auto-dedup': { type: 'boolean', description: 'punch the pages written again out of the parent images (--prev-images-dir)' },
  // containers (runc's checkpoint asks these)
  'manage-cgroups': { type: 'boolean', description: '--manage-cgroups[=MODE]: soft (the default, given or not), full, strict, props, none: the cgroups\' directories and properties are written with the memberships; ignore: the memberships only' },
  'freeze-cgroup': { type: 'string', description: 'the tree\'s freezer cgroup (v1 directory or v2 cgroup): its state is kept; it must hold the tree only and not be frozen' },
  'cgroup-root': { type: 'string', description: '[CONTROLLER:]/PATH — a controller\'s (all: no controller) directories are dumped from PATH down, not from the tasks\' own; repeatable' },
  'cgroup-yard': { type: 'string', description: 'PATH — a directory with one mount per cgroup hierarchy (criu.8\'s naming), used instead of mounts crtools makes where nothing sees them' },
  'cgroup-props': { type: 'string', description: 'TEXT — the properties saved per controller, changed (CRIU\'s form: "CTRL":\\n - "strategy": "merge|replace"\\n - "properties": ["a", "b"])' },
  'cgroup-props-file': { type: 'string', description: 'FILE — the same, read from FILE' },
  'cgroup-dump-controller': { type: 'string', description: 'NAME — only this controller\'s cgroup directories are dumped; repeatable' },
  root: { type: 'string', alias: 'r', description: 'the tree\'s root is a mount of its own (pivot_root): the restore puts it at its --root' },
  'ext-mount-map': { type: 'string', alias: 'M', description: 'KEY:VAL: the mount at mount point KEY (in the tree\'s namespace) is external, written with key VAL for the restore to map; auto: as --external mnt[]; repeatable' },
  'enable-external-masters': { type: 'boolean', description: 'with --external mnt[] (--ext-mount-map auto): slaves of criu\'s mounts are found external too (as mnt[]:m)' },
  'enable-external-sharing': { type: 'boolean', description: 'with --external mnt[] (--ext-mount-map auto): shared mounts are found external too (as mnt[]:s)' },
  'enable-fs': { type: 'string', description: 'FS[,FS...] or all — the tree\'s own mounts of these file systems (ones CRIU names no code for: ext4 on a device, hugetlbfs...) are mounted again from their source and options (fstype AUTO); their files are the caller\'s to keep; repeatable' },
  'empty-ns': { type: 'string', description: 'net: the network namespace is made empty at restore, its contents are not dumped' },
  'orphan-pts-master': { type: 'boolean', description: 'accepted as CRIU takes it (a pty master whose slave the caller holds)' },
} as const;

/** --external values, each a form the dump carries (unix[INO], tty[RDEV:DEV], net[INO]:KEY; mnt[KEY]:VAL goes to ext_mnt); another refused by name before anything is touched. */
function knownExternals(values: string[]): string[] {
  const rest = values.filter((v) => !v.startsWith('mnt['));
  dumpExternals(rest, new Refusals());
  return rest;
}

/** --timeout N: whole seconds, as CRIU's atoi-and-check. */
function parseTimeout(v: string): number {
  if (!/^\d+$/.test(v)) throw new CrtoolsError('USAGE', `invalid argument for --timeout: ${v}`, { exitCode: ExitCode.USAGE });
  return Number(v);
}


/** --page-server --address A --port P: where the pages go (both needed, as CRIU cannot connect without them). */
function pageServerOf(args: Record<string, unknown>): { address: string; port: number } | undefined {
  if (args['lazy-pages']) {
    // (as CRIU's: one --address/--port, the lazy page server's; with --page-server also the
    // page server the pages that are not lazy go to first)
    if (args['page-server']) return pageServerTarget(args);
    if (args.port === undefined) throw new CrtoolsError('USAGE', '--lazy-pages needs --port (and --address, default any) to serve the lazy pages on', { exitCode: ExitCode.USAGE });
    return { address: args.address === undefined ? '0.0.0.0' : String(args.address), port: parsePort(String(args.port)) };
  }
  return pageServerTarget(args);
}

/** --page-server --address A --port P: the page server to connect to (dump, lazy-pages); both needed, as CRIU cannot connect without them. */
export function pageServerTarget(args: Record<string, unknown>): { address: string; port: number } | undefined {
  if (!args['page-server']) return undefined;
  if (args.address === undefined || args.port === undefined) {
    throw new CrtoolsError('USAGE', '--page-server needs --address and --port of the page server', { exitCode: ExitCode.USAGE });
  }
  return { address: String(args.address), port: parsePort(String(args.port)) };
}

/** criu dump's parsed flags as the engine's options (the command line, and a configuration file read for an RPC request). */
export function dumpOptionsFromArgs(args: Record<string, unknown>, rawArgs: string[]): Partial<CriuOptions> {
  return {
    images_dir: String(args['images-dir']),
    work_dir: args['work-dir'] ? String(args['work-dir']) : undefined,
    log_file: args['log-file'] ? String(args['log-file']) : undefined,
    log_level: args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs),
    leave_running: !!args['leave-running'],
    leave_stopped: !!args['leave-stopped'],
    shell_job: !!args['shell-job'],
    file_locks: !!args['file-locks'],
    notify_scripts: repeatedOption(rawArgs, '--action-script').length > 0,
    display_stats: !!args['display-stats'],
    cpu_cap: cpuCapOf(rawArgs),
    track_mem: !!args['track-mem'],
    ext_unix_sk: !!args['ext-unix-sk'],
    // (--ext-unix-sk=INO,...: each as --external unix[INO])
    external: knownExternals([...repeatedOption(rawArgs, '--external'), ...extUnixSkExternals(rawArgs)]),
    auto_dedup: !!args['auto-dedup'],
    lazy_pages: !!args['lazy-pages'],
    use_page_server: !!args['lazy-pages'] && !!args['page-server'],
    ...(args['prev-images-dir'] ? { parent_img: String(args['prev-images-dir']) } : {}),
    tcp_established: !!args['tcp-established'],
    tcp_close: !!args['tcp-close'],
    tcp_skip_in_flight: !!args['skip-in-flight'],
    ...(args['network-lock'] !== undefined ? { network_lock: networkLockOf(String(args['network-lock'])) } : {}),
    ...(args.timeout !== undefined ? { timeout: parseTimeout(String(args.timeout)) } : {}),
    ...(args['ghost-limit'] !== undefined ? { ghost_limit: parseSize('ghost-limit', String(args['ghost-limit'])) } : {}),
    link_remap: !!args['link-remap'],
    force_irmap: !!args['force-irmap'],
    irmap_scan_paths: repeatedOption(rawArgs, '--irmap-scan-path'),
    ps: pageServerOf(args),
    ...manageCgroupsOf(rawArgs),
    ...cgroupOptionsOf(args, rawArgs),
    ...(args['cgroup-props'] !== undefined ? { cgroup_props: String(args['cgroup-props']) } : {}),
    ...(args['cgroup-props-file'] !== undefined ? { cgroup_props_file: String(args['cgroup-props-file']) } : {}),
    cgroup_dump_controller: repeatedOption(rawArgs, '--cgroup-dump-controller'),
    ...(args['freeze-cgroup'] !== undefined ? { freeze_cgroup: String(args['freeze-cgroup']) } : {}),
    ...(args.root !== undefined ? { root: String(args.root) } : {}),
    ext_mnt: mountExternals(args, rawArgs),
    ...autoExtMountsOf(args, rawArgs),
    empty_ns: emptyNsOf(args['empty-ns']),
    orphan_pts_master: !!args['orphan-pts-master'],
    enable_fs: repeatedOption(rawArgs, '--enable-fs'),
  };
}

/** criu dump's preflight, a command-line mode only (not an option of RPC requests or configuration files) */
const CHECK_ONLY_ARG = {
  'check-only': { type: 'boolean', description: 'check that the tree can be dumped: name everything a dump would refuse, write no image, leave the tree running' },
} as const;

/**
 * `criu dump --check-only`: every refusal on its own line, as a dump would print its one, then
 * the verdict; exit 0 only when a dump would go through (4 when something is not supported).
 */
async function runCheck(options: Parameters<typeof checkDump>[0], signal: AbortSignal): Promise<number> {
  const { pids, refusals } = await checkDump(options, { signal, stderr: (l) => process.stderr.write(l + '\n') });
  for (const r of refusals) process.stderr.write(`criu: ${r.message}\n`);
  if (!refusals.length) {
    process.stdout.write(`Looks good: the tree of ${options.pid} (${pids.length} task${pids.length === 1 ? '' : 's'}) can be dumped.\n`);
    return ExitCode.OK;
  }
  process.stderr.write(`criu: a dump of the tree of ${options.pid} would fail: ${refusals.length} thing${refusals.length === 1 ? '' : 's'} in it cannot be dumped\n`);
  return refusals.some((r) => r.exitCode === ExitCode.UNSUPPORTED) ? ExitCode.UNSUPPORTED : refusals[0]!.exitCode;
}

/**
 * `criu dump -t PID -D DIR [-o LOG] [-v0..-v4] [-W DIR] [-R] [-s]`: checkpoint a live process
 * tree into CRIU-format images. The tree is killed after a successful dump unless -R or -s.
 */
export const dumpCommand = defineCommand({
  meta: { name: 'dump', description: 'checkpoint a process tree into a directory of images' },
  args: { ...DUMP_ARGS, ...CHECK_ONLY_ARG, ...COMMON_ARGS, ...notYetArgs({ ...DUMP_ARGS, ...CHECK_ONLY_ARG, ...COMMON_ARGS }) },
  async run({ args, rawArgs }) {
    refuseNotYet(args, { ...DUMP_ARGS, ...CHECK_ONLY_ARG, ...COMMON_ARGS });
    applyCommonOptions(args, rawArgs);
    const pid = Number(args.tree);
    if (!/^\d+$/.test(String(args.tree)) || pid <= 1) {
      throw new CrtoolsError('BAD_PID', `invalid argument for -t: ${args.tree}`, { exitCode: ExitCode.USAGE });
    }
    // SIGINT/SIGTERM: stop at the next safe point (never while the parasite runs), resume the
    // tree as it was and remove what was written
    const interrupt = interruptible();
    const options = { ...dumpOptionsFromArgs(args, rawArgs), pid };
    try {
      if (args['check-only']) return await runCheck(options, interrupt.signal);
      const scripts = repeatedOption(rawArgs, '--action-script');
      const r = await dump(options, { signal: interrupt.signal, notify: actionScripts(scripts, String(args['images-dir'])), stderr: (l) => process.stderr.write(l + '\n') });
      if (args['display-stats']) process.stdout.write(dumpStatsText(r.stats));
    } finally {
      interrupt.release();
    }
    return ExitCode.OK;
  },
});
