/**
 * Where the restored network namespace's devices meet the outside, as the caller says it (CRIU's
 * externals): `--veth-pair IN=OUT[@BRIDGE]` (RPC veths) and `--external veth[IN]:OUT[@BRIDGE]`
 * name the peer of the tree's veth IN, made in criu's own namespace (first given wins, the
 * `veths` list first, as CRIU keeps them in one list); `--external macvlan[IN]:DEV` names the
 * device of criu's namespace the tree's macvlan IN hangs on; `--external mnt[KEY]:PATH` maps an
 * external mount as `--ext-mount-map`/RPC ext_mnt do, `--external mnt[]` binds the ones the dump
 * found by itself from where it found them; `--external netdev[IN]:OUT` names a device the caller
 * made in criu's namespace that becomes the tree's veth IN (moved in, renamed, at IN's index, as
 * CRIU 4.2 does). Any other external form is refused by name.
 */
import { CrtoolsError, ExitCode } from '@crtools/common';
import { AUTODETECTED_EXT_KEY } from '@crtools/images/facts';

export interface NetExternals {
  /** inside name → the peer's name outside and the bridge it goes in */
  veths: Map<string, { name: string; bridge?: string }>;
  /** inside name → the name of the lower device in criu's namespace */
  macvlans: Map<string, string>;
  /** inside name → a device of criu's namespace moved into the tree's namespace as that veth (netdev[IN]:OUT) */
  netdevs?: Map<string, string>;
}

/** A name the kernel takes for a device: 1-15 bytes, no blank, '/', ':', '@' or '='. */
const devName = (n: string | undefined): n is string => n !== undefined && n.length > 0 && Buffer.byteLength(n) <= 15 && !/[\s/:@=]/.test(n);

function usage(what: string): CrtoolsError {
  return new CrtoolsError('USAGE', `restore: invalid ${what}`, { exitCode: ExitCode.USAGE, context: { option: 'external' } });
}

/** The externals a restore takes (mnt[], veth[], macvlan[], netdev[]); another kind is refused by name (exit 4). */
export function checkExternalKind(e: string): void {
  if (/^(mnt|veth|macvlan|netdev)\[/.test(e)) return;
  throw new CrtoolsError('UNSUPPORTED_OPTION', `--external ${e}: a restore takes mnt[KEY]:PATH, veth[IN]:OUT[@BRIDGE], macvlan[IN]:DEVICE and netdev[IN]:DEVICE only (other externals are not supported yet, crtools issue 17)`, {
    exitCode: ExitCode.UNSUPPORTED, context: { option: 'external' },
  });
}

/**
 * A restore's externals from its options: veths (RPC veths), external (mnt[], veth[], macvlan[],
 * netdev[] forms) and ext_mnt (the external mounts by key; the mnt[] forms of `external` after them).
 */
export function restoreExternals(o: { veths?: readonly { if_in: string; if_out: string }[]; external?: readonly string[]; ext_mnt?: readonly { key: string; val: string }[]; auto_ext_mnt?: boolean }): NetExternals & { mounts: Map<string, string> } {
  const out = { veths: new Map(), macvlans: new Map(), netdevs: new Map(), mounts: new Map((o.ext_mnt ?? []).map((m) => [m.key, m.val])) } as NetExternals & { mounts: Map<string, string> };
  // --external mnt[] (--ext-mount-map auto, RPC auto_ext_mnt): the mounts the dump found external
  // by itself are bound from where it found them (their key stands for that; mounts.ts)
  if (o.auto_ext_mnt) out.mounts.set(AUTODETECTED_EXT_KEY, '');
  const veth = (inside: string, outside: string, as: string) => {
    const [name, bridge, more] = outside.split('@');
    if (!devName(inside) || !devName(name) || (bridge !== undefined && !devName(bridge)) || more !== undefined) throw usage(`veth pair ${as} (IN=OUT[@BRIDGE], device names of 1-15 bytes)`);
    if (!out.veths.has(inside)) out.veths.set(inside, { name, ...(bridge !== undefined ? { bridge } : {}) });
  };
  for (const p of o.veths ?? []) veth(p.if_in, p.if_out, `${p.if_in}=${p.if_out}`);
  for (const e of o.external ?? []) {
    checkExternalKind(e);
    const m = /^(\w+)\[([^\]]*)\](?::(.*))?$/.exec(e);
    const kind = m?.[1];
    if (kind === 'mnt' && !m![2] && /^(|m|s)$/.test(m![3] ?? '')) out.mounts.set(AUTODETECTED_EXT_KEY, '');
    else if (kind === 'mnt') {
      if (!m![2] || !m![3]) throw usage(`--external ${e} (mnt[KEY]:PATH, or mnt[])`);
      out.mounts.set(m![2], m![3]);
    } else if (kind === 'veth') veth(m![2]!, m![3] ?? '', `--external ${e}`);
    else if (kind === 'netdev') {
      if (!devName(m?.[2]) || !devName(m?.[3])) throw usage(`--external ${e} (netdev[IN]:DEVICE)`);
      if (!out.netdevs!.has(m![2]!)) out.netdevs!.set(m![2]!, m![3]!);
    } else {
      if (!devName(m?.[2]) || !devName(m?.[3])) throw usage(`--external ${e} (macvlan[IN]:DEVICE)`);
      if (!out.macvlans.has(m![2]!)) out.macvlans.set(m![2]!, m![3]!);
    }
  }
  return out;
}
