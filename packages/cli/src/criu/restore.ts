import { defineCommand, showUsage } from 'citty';
import { CrtoolsError, ExitCode, type CriuOptions, type InheritFd } from '@crtools/common';
import { cgroupOptionsOf, emptyNsOf, joinNsOf, manageCgroupsOf, mountExternals, autoExtMountsOf, vethPairs } from './container-options.js';
import { checkExternalKind, restore } from '@crtools/restorer';
import { actionScripts } from './action-scripts.js';
import { CPU_CAP_ARG, cpuCapOf } from './cpu-cap.js';
import { networkLockOf, repeatedOption, verbosityOf } from './flags.js';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';
import { restoreStatsText } from './stats.js';
import { interruptible } from './interrupt.js';

/** --inherit-fd fd[N]:resource values into the options model's { key, fd }. */
export function parseInheritFd(values: string[]): InheritFd[] {
  return values.map((v) => {
    const m = /^fd\[(\d+)\]:(.+)$/.exec(v);
    if (!m) throw new CrtoolsError('USAGE', `invalid --inherit-fd argument: ${v} (fd[N]:resource)`, { exitCode: ExitCode.USAGE });
    return { key: m[2]!, fd: Number(m[1]) };
  });
}

/**
 * A restore's --external values other than mounts (which go to ext_mnt): the network devices'
 * (veth[IN]:OUT[@BRIDGE], macvlan[IN]:DEVICE), read by the restore; another form is refused by
 * name before anything starts.
 */
function deviceExternals(rawArgs: string[]): string[] {
  const ext = repeatedOption(rawArgs, '--external');
  ext.forEach(checkExternalKind);
  return ext.filter((x) => !x.startsWith('mnt['));
}

/** criu restore's own options (criu.8 names); the not-yet ones are added beside them */
export const RESTORE_ARGS = {
  'images-dir': { type: 'string', alias: 'D', description: 'directory with the images', default: '.' },
  'work-dir': { type: 'string', alias: 'W', description: 'directory for logs and the pidfile (default: the images directory)' },
  'restore-detached': { type: 'boolean', alias: 'd', default: false, description: 'return once the tasks run, without waiting for the root' },
  'restore-sibling': { type: 'boolean', alias: 'S', default: false, description: 'restore the root as a sibling of criu' },
  'leave-stopped': { type: 'boolean', alias: 's', default: false, description: 'leave the tasks stopped after restore' },
  pidfile: { type: 'string', description: 'write the root task pid to this file' },
  'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
  'cpu-cap': CPU_CAP_ARG,
  'file-locks': { type: 'boolean', alias: 'l', default: false, description: 'restore the file locks the dump kept (filelocks.img)' },
  'shell-job': { type: 'boolean', alias: 'j', default: false, description: "the root was a shell's job: it joins criu's session (and group)" },
  'action-script': { type: 'string', description: 'run this script at each action point (pre-restore, post-restore, ...); repeatable' },
  'display-stats': { type: 'boolean', default: false, description: 'print the restore statistics on stdout (they are in stats-restore too)' },
  verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
  'ghost-limit': { type: 'string', description: "dump's option: a restore has no use for it (accepted, as CRIU does)" },
  'ghost-fiemap': { type: 'boolean', description: "dump's option: a restore has no use for it (accepted, as CRIU does)" },
  'mntns-compat-mode': { type: 'boolean', description: "accepted: CRIU's choice between its two engines of mount restore; crtools has one, which makes the same mount tree (propagation groups with MOVE_MOUNT_SET_GROUP where the kernel has it)" },
  'force-irmap': { type: 'boolean', description: "dump's option: a restore has no use for it (accepted, as CRIU does)" },
  'irmap-scan-path': { type: 'string', description: "dump's option: a restore has no use for it (accepted, as CRIU does)" },
  'link-remap': { type: 'boolean', description: "dump's option: the restore opens a link_remap file and removes its name whether given or not (accepted, as CRIU does)" },
  'auto-dedup': { type: 'boolean', default: false, description: 'punch the pages read back out of the pages images' },
  'inherit-fd': { type: 'string', description: 'fd[N]:resource — use descriptor N for the file named resource (pipe:[ino], socket:[ino], path); repeatable' },
  'tcp-established': { type: 'boolean', description: 'carry established TCP connections (TCP_REPAIR; both dump and restore need it)' },
  'tcp-close': { type: 'boolean', description: 'the TCP connections come back closed' },
  'skip-in-flight': { type: 'boolean', description: 'dump listeners with connections not accepted yet (those are lost)' },
  'network-lock': { type: 'string', description: 'accepted as CRIU does; the method the dump used (inventory.img) is the one lifted' },
  'lazy-pages': { type: 'boolean', default: false, description: "leave the lazy pages to `criu lazy-pages` (listening on lazy-pages.socket in the work dir), served on fault" },
  'ext-unix-sk': { type: 'boolean', alias: 'x', default: false, description: 'connect unix sockets dumped with --ext-unix-sk to their named peer outside the tree again' },
  root: { type: 'string', alias: 'r', description: "make the tree's mount namespace under this directory, which becomes its root" },
  'ext-mount-map': { type: 'string', alias: 'M', description: 'KEY:PATH — bind PATH where the external mount KEY was (--external mnt[KEY] at dump); auto: as --external mnt[]; repeatable' },
  'enable-external-masters': { type: 'boolean', description: 'accepted as CRIU accepts it at restore (a dump option)' },
  'enable-external-sharing': { type: 'boolean', description: 'accepted as CRIU accepts it at restore (a dump option)' },
  'enable-fs': { type: 'string', description: 'accepted as CRIU accepts it at restore (a dump option: the images name each file system)' },
  // (what a dump saves of cgroups: accepted and unused on restore, as CRIU takes them)
  'cgroup-props': { type: 'string', description: 'TEXT — a dump\'s option: accepted, unused on restore (as CRIU)' },
  'cgroup-props-file': { type: 'string', description: 'FILE — a dump\'s option: accepted, unused on restore (as CRIU)' },
  'cgroup-dump-controller': { type: 'string', description: 'NAME — a dump\'s option: accepted, unused on restore (as CRIU)' },
  'join-ns': { type: 'string', alias: 'J', description: 'NS:{PID|NS_FILE}[,UID,GID] — restore the tree inside an existing namespace (net, uts, ipc, time, user, mnt; user takes UID,GID); repeatable' },
  external: { type: 'string', description: 'mnt[KEY]:PATH — as --ext-mount-map KEY:PATH; mnt[] — bind each mount the dump found external by itself (--external mnt[]) from where it was found; veth[IN]:OUT[@BRIDGE] — as --veth-pair; macvlan[IN]:DEVICE — the tree\'s macvlan IN hangs on DEVICE; repeatable' },
  'veth-pair': { type: 'string', description: "IN=OUT[@BRIDGE] — the tree's veth IN gets its peer OUT in criu's network namespace (in BRIDGE, up); repeatable" },
  'manage-cgroups': { type: 'boolean', description: 'put the tasks back in their cgroups; --manage-cgroups=MODE: none, props, soft (default), full, strict, ignore' },
  'cgroup-root': { type: 'string', description: '[CONTROLLER:]/PATH — the dumped cgroups of a controller (all: no controller) go under PATH; repeatable' },
  'cgroup-yard': { type: 'string', description: 'PATH — a directory with one mount per cgroup hierarchy (criu.8\'s naming), used instead of mounts crtools makes where nothing sees them' },
  'empty-ns': { type: 'string', description: 'net: the tree gets an empty network namespace (dumped with --empty-ns net)' },
  'evasive-devices': { type: 'boolean', description: 'accepted: device files are opened at their dumped paths' },
  'orphan-pts-master': { type: 'boolean', description: 'accepted for a tree without a terminal (one with a terminal is refused)' },
} as const;

/** criu restore's parsed flags as the engine's options (the command line, and a configuration file read for an RPC request). */
export function restoreOptionsFromArgs(args: Record<string, unknown>, rawArgs: string[]): Partial<CriuOptions> {
  return {
    images_dir: String(args['images-dir']),
    work_dir: args['work-dir'] as string | undefined,
    restore_detached: !!args['restore-detached'],
    rst_sibling: !!args['restore-sibling'],
    leave_stopped: !!args['leave-stopped'],
    pidfile: args.pidfile as string | undefined,
    log_file: args['log-file'] as string | undefined,
    log_level: args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs),
    cpu_cap: cpuCapOf(rawArgs),
    inherit_fd: parseInheritFd(repeatedOption(rawArgs, '--inherit-fd')),
    shell_job: !!args['shell-job'],
    auto_dedup: !!args['auto-dedup'],
    file_locks: !!args['file-locks'],
    ext_unix_sk: !!args['ext-unix-sk'],
    notify_scripts: repeatedOption(rawArgs, '--action-script').length > 0,
    display_stats: !!args['display-stats'],
    tcp_established: !!args['tcp-established'],
    tcp_close: !!args['tcp-close'],
    tcp_skip_in_flight: !!args['skip-in-flight'],
    ...(args['network-lock'] !== undefined ? { network_lock: networkLockOf(String(args['network-lock'])) } : {}),
    lazy_pages: !!args['lazy-pages'],
    ...(args.root !== undefined ? { root: String(args.root) } : {}),
    external: deviceExternals(rawArgs),
    ext_mnt: mountExternals(args, rawArgs),
    ...autoExtMountsOf(args, rawArgs),
    veths: vethPairs(rawArgs),
    ...manageCgroupsOf(rawArgs),
    ...cgroupOptionsOf(args, rawArgs),
    empty_ns: emptyNsOf(args['empty-ns']),
    join_ns: joinNsOf(rawArgs),
    evasive_devices: !!args['evasive-devices'],
    orphan_pts_master: !!args['orphan-pts-master'],
    skip_file_rwx_check: !!args['skip-file-rwx-check'],
  };
}

export const restoreCommand = defineCommand({
  meta: { name: 'restore', description: 'restore processes from a checkpoint image directory' },
  args: { ...RESTORE_ARGS, ...COMMON_ARGS, ...notYetArgs({ ...RESTORE_ARGS, ...COMMON_ARGS }) },
  async run({ args, rawArgs }) {
    refuseNotYet(args, { ...RESTORE_ARGS, ...COMMON_ARGS });
    applyCommonOptions(args, rawArgs);
    if (rawArgs.includes('--help') || rawArgs.includes('-h')) {
      await showUsage(restoreCommand);
      return 0;
    }
    const dir = String(args['images-dir']);
    const scripts = repeatedOption(rawArgs, '--action-script');
    // SIGINT/SIGTERM before the tree runs: the restore is called off, the tasks it started killed;
    // once the tree runs they are their default again (criu ends, a waited-for root goes on)
    const interrupt = interruptible();
    let r: Awaited<ReturnType<typeof restore>>;
    try {
      r = await restore(
        restoreOptionsFromArgs(args, rawArgs),
        { err: (l) => process.stderr.write(l + '\n'), notify: actionScripts(scripts, dir), displayStats: (s) => process.stdout.write(restoreStatsText(s)), signal: interrupt.signal, resumed: interrupt.release },
      );
    } finally {
      interrupt.release();
    }
    const code = r.exitCode ?? ExitCode.OK;
    process.exitCode = code;
    return code;
  },
});
