/**
 * The container options dump and restore both take (criu.8's forms): external mounts, the
 * --manage-cgroups mode, --cgroup-root, --cgroup-yard, --empty-ns, and restore's --join-ns and veth peers.
 */
import { CGROUP_MODES, CLONE_NEWNET, CrtoolsError, ExitCode, type CgroupMode, type JoinNamespace } from '@crtools/common';
import { optionalValueOption, repeatedOption } from './flags.js';

/** The mnt[] forms of --external (auto-detection, CRIU's ext_mount_parse_auto: mnt[], mnt[]:, mnt[]:m, mnt[]:s). */
const AUTO_MNT = /^mnt\[\](?::([ms]?))?$/;

/** --external mnt[KEY]:VAL and --ext-mount-map KEY:VAL (-M): the external mounts, by mount point (mnt[] and auto: autoExtMountsOf). */
export function mountExternals(args: Record<string, unknown>, rawArgs: string[]): { key: string; val: string }[] {
  const out: { key: string; val: string }[] = [];
  for (const v of repeatedOption(rawArgs, '--external').filter((x) => x.startsWith('mnt[') && !AUTO_MNT.test(x))) {
    const m = /^mnt\[([^\]]+)\]:(.+)$/.exec(v);
    if (!m) throw new CrtoolsError('USAGE', `invalid --external ${v} (mnt[KEY]:VAL, or mnt[]:FLAGS with FLAGS m or s)`, { exitCode: ExitCode.USAGE, context: { option: 'external', value: v } });
    out.push({ key: m[1]!, val: m[2]! });
  }
  for (const v of extMountMaps(args, rawArgs).filter((x) => x !== 'auto')) {
    const i = v.indexOf(':');
    if (i <= 0 || i === v.length - 1) throw new CrtoolsError('USAGE', `invalid --ext-mount-map ${v} (KEY:VAL or auto)`, { exitCode: ExitCode.USAGE, context: { option: 'ext-mount-map', value: v } });
    out.push({ key: v.slice(0, i), val: v.slice(i + 1) });
  }
  return out;
}

function extMountMaps(args: Record<string, unknown>, rawArgs: string[]): string[] {
  const maps = [...repeatedOption(rawArgs, '--ext-mount-map'), ...repeatedOption(rawArgs, '-M')];
  if (!maps.length && args['ext-mount-map'] !== undefined) maps.push(String(args['ext-mount-map']));
  return maps;
}

/**
 * External mounts found without being named (criu.8): --external mnt[] or --ext-mount-map auto
 * (RPC auto_ext_mnt); slaves of criu's mounts too with mnt[]:m or --enable-external-masters
 * (ext_masters), shared ones with mnt[]:s or --enable-external-sharing (ext_sharing).
 */
export function autoExtMountsOf(args: Record<string, unknown>, rawArgs: string[]): { auto_ext_mnt: boolean; ext_masters: boolean; ext_sharing: boolean } {
  const forms = repeatedOption(rawArgs, '--external').map((x) => AUTO_MNT.exec(x)).filter((m): m is RegExpExecArray => !!m);
  return {
    auto_ext_mnt: forms.length > 0 || extMountMaps(args, rawArgs).includes('auto'),
    ext_masters: forms.some((m) => m[1] === 'm') || !!args['enable-external-masters'],
    ext_sharing: forms.some((m) => m[1] === 's') || !!args['enable-external-sharing'],
  };
}

/** --manage-cgroups[=MODE]: CRIU's optional mode (bare: soft); the last one given wins. */
export function manageCgroupsOf(rawArgs: string[]): { manage_cgroups?: boolean; manage_cgroups_mode?: CgroupMode } {
  const given = optionalValueOption(rawArgs, '--manage-cgroups');
  if (!given.length) return {};
  const v = given[given.length - 1] ?? 'soft';
  if (!(CGROUP_MODES as readonly string[]).includes(v)) throw new CrtoolsError('USAGE', `invalid argument for --manage-cgroups: ${v} (${CGROUP_MODES.join(', ')})`, { exitCode: ExitCode.USAGE });
  return { manage_cgroups: true, manage_cgroups_mode: v as CgroupMode };
}

/** --cgroup-root [CTRL:]PATH values. */
function parseCgroupRoot(values: string[]): { ctrl?: string; path: string }[] {
  return values.map((v) => {
    const i = v.indexOf(':');
    const [ctrl, path] = i > 0 && !v.startsWith('/') ? [v.slice(0, i), v.slice(i + 1)] : [undefined, v];
    if (!path.startsWith('/')) throw new CrtoolsError('USAGE', `invalid --cgroup-root argument: ${v} ([controller:]/path)`, { exitCode: ExitCode.USAGE });
    return { ...(ctrl ? { ctrl } : {}), path };
  });
}

/** --cgroup-root (repeatable) and --cgroup-yard. */
export function cgroupOptionsOf(args: Record<string, unknown>, rawArgs: string[]): { cg_root: { ctrl?: string; path: string }[]; cgroup_yard?: string } {
  const yard = args['cgroup-yard'];
  return { cg_root: parseCgroupRoot(repeatedOption(rawArgs, '--cgroup-root')), ...(yard !== undefined && yard !== '' ? { cgroup_yard: String(yard) } : {}) };
}

/** --empty-ns net (the one namespace CRIU leaves empty), as CLONE_NEWNET. */
export function emptyNsOf(v: unknown): number {
  if (v === undefined) return 0;
  if (String(v) !== 'net') throw new CrtoolsError('USAGE', `invalid argument for --empty-ns: ${String(v)} (only net)`, { exitCode: ExitCode.USAGE });
  return CLONE_NEWNET;
}

/** --join-ns NS:{PID|NS_FILE}[,EXTRA_OPTS] (-J, repeatable): the syntax; the restore checks each namespace. */
export function joinNsOf(rawArgs: string[]): JoinNamespace[] {
  return [...repeatedOption(rawArgs, '--join-ns'), ...repeatedOption(rawArgs, '-J')].map((arg) => {
    const colon = arg.indexOf(':');
    if (colon <= 0 || colon === arg.length - 1) throw new CrtoolsError('USAGE', `invalid --join-ns argument: ${arg} (NS:{PID|NS_FILE}[,EXTRA_OPTS])`, { exitCode: ExitCode.USAGE, context: { option: 'join-ns', value: arg } });
    const ns = arg.slice(0, colon);
    const rest = arg.slice(colon + 1);
    // (only the user namespace takes extra options, UID,GID after its file)
    const comma = ns === 'user' ? rest.indexOf(',') : -1;
    return comma < 0 ? { ns, file: rest } : { ns, file: rest.slice(0, comma), extra: rest.slice(comma + 1) };
  });
}

/**
 * --veth-pair IN=OUT[@BRIDGE] (RPC veths), in the order given; the restore checks the names, and
 * takes --external veth[IN]:OUT[@BRIDGE] as the same (after these, as CRIU).
 */
export function vethPairs(rawArgs: string[]): { if_in: string; if_out: string }[] {
  return repeatedOption(rawArgs, '--veth-pair').map((v) => {
    const eq = v.indexOf('=');
    if (eq < 0) throw new CrtoolsError('USAGE', `invalid --veth-pair argument: ${v} (IN=OUT[@BRIDGE])`, { exitCode: ExitCode.USAGE });
    return { if_in: v.slice(0, eq), if_out: v.slice(eq + 1) };
  });
}
