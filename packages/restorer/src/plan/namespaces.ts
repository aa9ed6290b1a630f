/**
 * The namespaces a restore makes again: those of the root that are not the dump's criu's
 * (inventory root_ids), as CRIU 4.2 decides it. The root task is born in them (clone flags of
 * its clone3), their state is put back from inside before any task runs its own code; every other
 * task must live in its parent's (CRIU's rule: no nested namespaces), but the first task of a
 * mount namespace made below the root's (nestedMountNamespaces), which makes it again (unshare,
 * shaped by the launcher). A root in a pid namespace of its own is born as its init (pid 1) and every other task at its pid inside it.
 */
import { fstypeName, ND_TYPE, NS_KINDS, type NsKind } from '@crtools/images/facts';
import { badImage as badInput, firstEntry as first, readImage as img, refuse as unsupported, type Obj } from '@crtools/files/plan';
import { NS_TYPE, SHM_HUGETLB } from '@crtools/sys';
import type { IdExtent } from '@crtools/procfs';
import { CLONE_NEWNET, CrtoolsError, ExitCode } from '@crtools/common';
import type { MountPlan, NamespacePlan, NetLinkPlan, NetPlan, SysvPlan } from '../plan.js';
import type { NetExternals } from '../net-externals.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { msgsOfPayload, semValues } from '@crtools/images';
import { openPageReader } from '@crtools/pagemap';

/** clone(2) flags of the namespaces a restore makes (CLONE_NEW*). */
const CLONE_NEW: Partial<Record<NsKind, number>> = { uts: NS_TYPE.uts, ipc: NS_TYPE.ipc, pid: NS_TYPE.pid, mnt: NS_TYPE.mnt, user: NS_TYPE.user };

/**
 * The kinds whose namespaces a restore makes again (the network one beforehand, the root born
 * inside it; the time one by a helper the root is born from: launch.ts; the cgroup one by the
 * root itself at the namespace's root that cgroup.img records, cgroups.ts: none recorded, none
 * made, as CRIU).
 */
export const RESTORED_NS = [...Object.keys(CLONE_NEW), 'net', 'time', 'cgroup'] as NsKind[];

/**
 * The root's namespaces that differ from criu's (root_ids), refused by name unless restored.
 * `emptyNs` (--empty-ns, CLONE_NEW* bits): those made empty, their images not read; `inherit`
 * (--inherit-fd, key → descriptor): where an external network namespace is found; `net`
 * (--veth-pair, --external veth[]/macvlan[]): where its devices meet the outside.
 */
export async function rootNamespaces(
  dir: string, rootPid: number, rootIds: Obj, ids: Obj, emptyNs = 0, inherit?: ReadonlyMap<string, number>, net: NetExternals = { veths: new Map(), macvlans: new Map() },
): Promise<NamespacePlan> {
  const own: NsKind[] = NS_KINDS.filter((k) => ids[`${k}_ns_id`] !== undefined && rootIds[`${k}_ns_id`] !== undefined && Number(ids[`${k}_ns_id`]) !== Number(rootIds[`${k}_ns_id`]));
  const off = own.filter((k) => !RESTORED_NS.includes(k));
  if (off.length) {
    throw unsupported(`pid ${rootPid} lives in its own ${off.join(', ')} namespace${off.length > 1 ? 's' : ''}, which restore does not recreate yet (restored: ${RESTORED_NS.join(', ')})`, { pid: rootPid });
  }
  // the network and time namespaces are made in the user namespace, made first, whose pids are
  // then set from inside it (userns.ts): in a pid namespace of the tree's own only
  if (own.includes('user') && (own.includes('net') || own.includes('time')) && !own.includes('pid')) {
    const both = own.filter((k) => k === 'net' || k === 'time');
    throw unsupported(`pid ${rootPid} lives in its own user namespace and its own ${both.join(' and ')} namespace${both.length > 1 ? 's' : ''} but in criu's pid namespace, which restore does not recreate yet`, { pid: rootPid });
  }
  if (own.includes('pid') && rootPid !== 1) throw badInput(`pid ${rootPid} is the root of a pid namespace of its own (ids-${rootPid}.img) but not its init (pid 1)`, { pid: rootPid });
  const plan: NamespacePlan = { cloneFlags: own.reduce((f, k) => f | (CLONE_NEW[k] ?? 0), 0) };
  if (own.includes('user')) {
    const f = `userns-${Number(ids.user_ns_id)}.img`;
    const e = first(await img(dir, f, 'USERNS'), f);
    const map = (list: unknown, what: string): IdExtent[] => {
      const out = ((list as Obj[] | undefined) ?? []).map((x) => ({ first: Number(x.first) >>> 0, lowerFirst: Number(x.lower_first) >>> 0, count: Number(x.count) >>> 0 }));
      if (!out.length) throw badInput(`${f}: no ${what} map`, { image: f });
      if (out.length > 340) throw badInput(`${f}: ${out.length} ${what} extents, more than the kernel takes (340)`, { image: f });
      return out;
    };
    plan.userns = { uid: map(e.uid_map, 'uid'), gid: map(e.gid_map, 'gid') };
  }
  if (own.includes('uts')) {
    const f = `utsns-${Number(ids.uts_ns_id)}.img`;
    const e = first(await img(dir, f, 'UTSNS'), f);
    plan.uts = { nodename: String(e.nodename ?? ''), domainname: String(e.domainname ?? '') };
    for (const [k, v] of Object.entries(plan.uts)) {
      if (Buffer.byteLength(v) > 64) throw badInput(`${f}: ${k} longer than 64 bytes`, { image: f });
    }
  }
  if (own.includes('time')) {
    const f = `timens-${Number(ids.time_ns_id)}.img`;
    const e = first(await img(dir, f, 'TIMENS'), f);
    const ts = (v: unknown, what: string) => {
      const t = (v ?? {}) as Obj;
      if (t.tv_sec === undefined || t.tv_nsec === undefined) throw badInput(`${f}: no ${what} clock`, { image: f });
      const sec = BigInt(t.tv_sec as bigint | number);
      const nsec = BigInt(t.tv_nsec as bigint | number);
      if (nsec >= 1_000_000_000n) throw badInput(`${f}: ${what} nanoseconds ${nsec} out of range`, { image: f });
      return { sec, nsec };
    };
    plan.clocks = { monotonic: ts(e.monotonic, 'monotonic'), boottime: ts(e.boottime, 'boottime') };
  }
  if (own.includes('net')) {
    const id = Number(ids.net_ns_id);
    // netns-<id>.img, read once: an external namespace's holds only its key
    const netns = emptyNs & CLONE_NEWNET ? undefined : await img(dir, `netns-${id}.img`, 'NETNS');
    const extKey = netns?.[0]?.ext_key;
    if (emptyNs & CLONE_NEWNET) plan.emptyNet = true;
    else if (extKey !== undefined) {
      // as CRIU: the caller's namespace, handed over as an inherited descriptor named by its key
      const key = String(extKey);
      const fd = inherit?.get(key);
      if (fd === undefined) {
        throw new CrtoolsError('USAGE', `restore: the tree's network namespace was dumped as an external one (${key}): give it with --inherit-fd fd[N]:${key}`, { exitCode: ExitCode.USAGE, context: { key } });
      }
      plan.extNet = { key, fd };
    } else plan.net = await netNamespace(dir, id, netns, net);
  }
  if (own.includes('mnt')) plan.mounts = await mountsOf(dir, Number(ids.mnt_ns_id));
  if (own.includes('ipc')) {
    const id = Number(ids.ipc_ns_id);
    const f = `ipcns-var-${id}.img`;
    const e = first(await img(dir, f, 'IPC_VAR'), f);
    plan.ipcVar = e;
    const sysv = await sysvObjects(dir, id);
    if (sysv.length) plan.sysv = sysv;
  }
  return plan;
}

/** the huge page size bits (log2 of the size << 26) beside SHM_HUGETLB */
const HUGE_SIZE_BITS = 0x3f << 26;

/** The SysV objects CRIU writes beside the IPC namespace's sysctls (images absent: none). */
async function sysvObjects(dir: string, id: number): Promise<SysvPlan[]> {
  const out: SysvPlan[] = [];
  for (const [kind, magic] of [['shm', 'IPCNS_SHM'], ['sem', 'IPCNS_SEM'], ['msg', 'IPCNS_MSG']] as const) {
    const f = `ipcns-${kind}-${id}.img`;
    for (const e of (await img(dir, f, magic, true)) ?? []) {
      const d = (e.desc ?? {}) as Obj;
      const o: SysvPlan = { kind, id: Number(d.id), key: Number(d.key) >>> 0, mode: Number(d.mode), uid: Number(d.uid), gid: Number(d.gid), cuid: Number(d.cuid ?? d.uid), cgid: Number(d.cgid ?? d.gid) };
      const extra = e.extra as Buffer | undefined;
      if (kind === 'shm') {
        o.size = BigInt(e.size as bigint | number);
        // on huge pages (SHM_HUGETLB): made again with that flag and the page size's bits
        if (e.hugetlb_flag !== undefined && Number(e.hugetlb_flag) & SHM_HUGETLB) o.hugetlb = Number(e.hugetlb_flag) & HUGE_SIZE_BITS;
        if (e.in_pagemaps === true) {
          const name = `pagemap-shmem-${o.id}.img`;
          if (!existsSync(join(dir, name))) throw badInput(`${join(dir, name)}: image missing (the pages of SysV shared memory ${o.id})`, { image: name });
          const reader = await openPageReader({ dir, id: o.id, kind: 'shmem' });
          o.pages = reader.segments().map((s) => ({ vaddr: s.vaddr, npages: BigInt(s.nrPages), offset: BigInt(s.offset), path: s.path }));
          reader.close();
        } else {
          // older CRIU: the contents right after the entry
          o.inline = extra ?? Buffer.alloc(0);
        }
      } else if (kind === 'sem') {
        o.values = semValues(extra ?? Buffer.alloc(0), Number(e.nsems));
        if (o.values.length !== Number(e.nsems)) throw badInput(`${f}: semaphore set ${o.id} holds fewer values than its ${e.nsems}`, { image: f });
      } else {
        o.qbytes = Number(e.qbytes);
        o.msgs = msgsOfPayload(extra ?? Buffer.alloc(0)).map((m) => ({ mtype: BigInt(m.msg.mtype as bigint | number), data: Buffer.from(m.data) }));
        if (o.msgs.length !== Number(e.qnum)) throw badInput(`${f}: queue ${o.id} holds ${o.msgs.length} messages, its entry says ${e.qnum}`, { image: f });
      }
      out.push(o);
    }
  }
  return out;
}

/**
 * The network namespace as CRIU 4.2 writes it: its links (netdev-<id>.img; loopback and veth,
 * any other kind refused by name), sysctls (netns-<id>.img) and the raw outputs of ip and
 * iptables-save fed back to them (an image absent: nothing to restore). `netns`: the entries of
 * netns-<id>.img, already read.
 */
async function netNamespace(dir: string, id: number, netns: Obj[] | undefined, ext: NetExternals): Promise<NetPlan> {
  const f = `netdev-${id}.img`;
  const links = ((await img(dir, f, 'NETDEV')) ?? []).map((e): NetLinkPlan => {
    const type = typeof e.type === 'string' ? ND_TYPE[e.type as keyof typeof ND_TYPE] ?? -1 : Number(e.type);
    const name = String(e.name);
    if (type !== ND_TYPE.LOOPBACK && type !== ND_TYPE.VETH && type !== ND_TYPE.MACVLAN && type !== ND_TYPE.BRIDGE && type !== ND_TYPE.TUN) throw unsupported(`${f}: network device ${name} (${String(e.type)}) is not restored (crtools carries loopback, veth, macvlan, bridge and tun)`, { image: f });
    const l: NetLinkPlan = { kind: type === ND_TYPE.VETH ? 'veth' : type === ND_TYPE.MACVLAN ? 'macvlan' : type === ND_TYPE.BRIDGE ? 'bridge' : type === ND_TYPE.TUN ? 'tun' : 'loopback', name, ifindex: Number(e.ifindex), flags: Number(e.flags) >>> 0, mtu: Number(e.mtu), conf4: sysctls(e.conf4), conf6: sysctls(e.conf6) };
    if (type !== ND_TYPE.LOOPBACK && e.address) l.address = Buffer.from(e.address as Uint8Array);
    if (type === ND_TYPE.MACVLAN) {
      const mv = e.macvlan as Obj | undefined;
      if (!mv || mv.mode === undefined) throw badInput(`${f}: macvlan ${name} without its mode`, { image: f });
      const lower = ext.macvlans.get(name);
      if (lower === undefined) throw new CrtoolsError('USAGE', `restore: macvlan ${name} of the tree's network namespace hung on a device outside the tree: say which (--external macvlan[${name}]:DEVICE)`, { exitCode: ExitCode.USAGE, context: { device: name } });
      l.macvlan = { mode: Number(mv.mode) >>> 0, ...(mv.flags !== undefined && mv.flags !== null ? { flags: Number(mv.flags) } : {}), lower };
    }
    if (type === ND_TYPE.TUN) {
      const t = e.tun as Obj | undefined;
      if (!t) throw badInput(`${f}: tun device ${name} without its tun_link_entry`, { image: f });
      l.tun = { flags: Number(t.flags) >>> 0, owner: Number(t.owner), group: Number(t.group), vnethdr: Number(t.vnethdr), sndbuf: Number(t.sndbuf) };
    }
    // (a port of a bridge of the namespace: checked with the namespace's links below)
    if (e.master !== undefined && e.master !== null) l.master = Number(e.master);
    if (type === ND_TYPE.VETH) {
      // (as CRIU writes it: peer_nsid only when the peer's namespace is one of the dump's; one
      // that is another of the tree's is checked when all are read: treeNetPeers)
      const peerNs = e.peer_nsid === undefined || e.peer_nsid === null ? undefined : Number(e.peer_nsid);
      // a device the caller made for it (netdev[IN]:OUT) is moved in, as CRIU, whose peer it has;
      // else a peer given a name outside wins, as CRIU (even over a peer that was inside)
      const moved = ext.netdevs?.get(name);
      const outside = ext.veths.get(name);
      if (moved) {
        if (peerNs === id) throw unsupported(`${f}: veth ${name}'s peer is in the namespace too: it cannot be both moved in (--external netdev[${name}]:${moved}) and made again with its peer`, { image: f });
        l.moveFrom = moved;
      } else if (outside) l.peer = { ifindex: Number(e.peer_ifindex ?? 0), outside };
      else if (peerNs === id) l.peer = { ifindex: Number(e.peer_ifindex ?? 0) };
      else if (peerNs !== undefined) l.peer = { ifindex: Number(e.peer_ifindex ?? 0), ns: { id: peerNs, name: '' } };
      else {
        throw new CrtoolsError('USAGE', `restore: veth ${name} of the tree's network namespace had its peer outside the tree: say where it goes (--veth-pair ${name}=NAME[@BRIDGE], --external veth[${name}]:NAME[@BRIDGE], RPC veths)`, { exitCode: ExitCode.USAGE, context: { device: name } });
      }
    }
    return l;
  });
  for (const l of links) {
    if (l.master === undefined) continue;
    const m = links.find((x) => x.ifindex === l.master);
    if (m?.kind !== 'bridge') throw unsupported(`${f}: ${l.kind} ${l.name}'s master device (index ${l.master}) is not a bridge of the namespace, which is not restored`, { image: f });
  }
  const n = `netns-${id}.img`;
  const e = first(netns, n);
  const nsids = new Map(((e.nsids as Obj[] | undefined) ?? []).map((x) => [Number(x.target_ns_id), Number(x.netnsid_value)]));
  const raw: Record<string, Buffer> = {};
  for (const k of ['ifaddr', 'route', 'route6', 'rule', 'iptables', 'ip6tables', 'nftables'] as const) {
    const p = join(dir, `${k}-${id}.img`);
    if (existsSync(p)) raw[k] = readFileSync(p);
  }
  return {
    id, links,
    all4: sysctls(e.all_conf4), def4: sysctls(e.def_conf4), all6: sysctls(e.all_conf6), def6: sysctls(e.def_conf6),
    unix: sysctls(e.unix_conf), ipv4: sysctls(e.ipv4_sysctl), raw, ...(nsids.size ? { nsids } : {}),
  };
}

/**
 * The tree's network namespaces (`nets`: by id, the root's among them) checked against each
 * other: the ids each knows the others by are the tree's, and a veth whose peer is in another of
 * them finds it there (a veth at that index naming it back), whose name it is given.
 */
export function treeNetPeers(nets: ReadonlyMap<number, NetPlan>): void {
  for (const [id, net] of nets) {
    for (const target of net.nsids?.keys() ?? []) {
      if (!nets.has(target)) throw unsupported(`netns-${id}.img: the network namespace knows namespace ${target} by id, which is not one of the tree's`, { image: `netns-${id}.img` });
    }
    for (const l of net.links) {
      const ns = l.peer?.ns;
      if (!ns) continue;
      const f = `netdev-${id}.img`;
      const p = nets.get(ns.id)?.links.find((x) => x.kind === 'veth' && x.ifindex === l.peer!.ifindex);
      if (!nets.has(ns.id)) throw unsupported(`${f}: veth ${l.name}'s peer is in network namespace ${ns.id}, which is not one of the tree's`, { image: f });
      if (!p || p.peer?.ns?.id !== id || p.peer.ifindex !== l.ifindex) throw badInput(`${f}: veth ${l.name}'s peer (index ${l.peer!.ifindex} in network namespace ${ns.id}) is not a veth naming it back`, { image: f });
      ns.name = p.name;
    }
  }
}

/** A list of sysctl_entry as values to write (null: not kept, left as it is). */
function sysctls(list: unknown): (string | null)[] {
  return ((list as Obj[] | undefined) ?? []).map((x) => (x.iarg !== undefined && x.iarg !== null ? String(Number(x.iarg) | 0) : typeof x.sarg === 'string' ? x.sarg : null));
}

/**
 * The mounts of mountpoints-<id>.img in the order they are made (CRIU writes the last mounted
 * first), each tmpfs with its contents' image (tmpfs-dev-<dev>.tar.gz.img, absent: none kept),
 * each external one (--external mnt[KEY]:...) with its key.
 */
export async function mountsOf(dir: string, id: number): Promise<MountPlan[]> {
  const f = `mountpoints-${id}.img`;
  const entries = (await img(dir, f, 'MNTS')) ?? [];
  if (!entries.length) throw badInput(`${f}: no mounts`, { image: f });
  return entries.reverse().map((e) => {
    const m: MountPlan = {
      id: Number(e.mnt_id), parent: Number(e.parent_mnt_id), fstype: Number(e.fstype), dev: Number(e.root_dev), root: String(e.root ?? ''),
      mountpoint: String(e.mountpoint ?? ''), source: String(e.source ?? ''), options: String(e.options ?? ''), flags: Number(e.flags ?? 0),
      sbFlags: Number(e.sb_flags ?? 0), shared: Number(e.shared_id ?? 0), master: Number(e.master_id ?? 0),
    };
    const name = fstypeName(m.fstype) ?? (e.fsname ? String(e.fsname) : undefined);
    if (name) m.fsname = name;
    if (!m.mountpoint.startsWith('/') || !m.root.startsWith('/')) throw badInput(`${f}: mount ${m.id} at "${m.mountpoint}" of root "${m.root}"`, { image: f });
    if (e.deleted) m.deleted = true;
    // (an older crtools wrote the root as mountinfo shows it: "ROOT//deleted")
    if (m.root.endsWith('//deleted')) {
      m.root = m.root.slice(0, -'//deleted'.length) || '/';
      m.deleted = true;
    }
    if (e.ext_key) m.extKey = String(e.ext_key);
    else if (e.ext_mount) throw unsupported(`${f}: mount ${m.id} at ${m.mountpoint} is external without a key (an older CRIU's form), which restore does not take`, { image: f });
    const tar = `tmpfs-dev-${m.dev}.tar.gz.img`;
    if (m.fsname === 'tmpfs' && existsSync(join(dir, tar))) m.tar = join(dir, tar);
    return m;
  });
}

/**
 * Each task's namespace ids, in pstree.img's order (ids-<pid>.img, or the ids in its core image
 * where the checkpoint has no ids image; undefined: none recorded), read once for the nested
 * mount and network namespaces alike.
 */
export async function readTreeIds(dir: string, pstree: readonly Obj[]): Promise<(Obj | undefined)[]> {
  const out: (Obj | undefined)[] = [];
  for (const e of pstree) {
    const pid = Number(e.pid);
    const idsImg = `ids-${pid}.img`;
    out.push(existsSync(join(dir, idsImg)) ? (await img(dir, idsImg, 'IDS'))?.[0] : ((await img(dir, `core-${pid}.img`, 'CORE', true))?.[0]?.ids as Obj | undefined));
  }
  return out;
}

/** A mount namespace of the tree below the root's: its mounts, the namespace it was made from, the first task living in it (which made it). */
export interface NestedMntNs {
  id: number;
  parent: number;
  first: number;
  mounts: MountPlan[];
}

/**
 * The mount namespaces below the root's (ids-<pid>.img mnt_ns_id neither the root's nor criu's,
 * root_ids), in the tree's order (pstree.img lists parents first): each made by the first task
 * living in it, unshared from its parent's; `owner`: each of their mount ids → a task living
 * there (a file reached through one is opened through that task's root, /proc/PID/root).
 */
export async function nestedMountNamespaces(dir: string, pstree: readonly Obj[], treeIds: readonly (Obj | undefined)[], rootIds: Obj): Promise<{ byId: Map<number, NestedMntNs>; owner: Map<number, number> }> {
  const byId = new Map<number, NestedMntNs>();
  const owner = new Map<number, number>();
  const mntOf = new Map<number, number>();
  let rootMnt: number | undefined;
  for (const [i, e] of pstree.entries()) {
    const pid = Number(e.pid);
    const ids = treeIds[i];
    if (ids?.mnt_ns_id === undefined || ids.mnt_ns_id === null) continue;
    const id = Number(ids.mnt_ns_id);
    mntOf.set(pid, id);
    if (i === 0) rootMnt = id;
    if (id === rootMnt || (rootIds.mnt_ns_id !== undefined && id === Number(rootIds.mnt_ns_id)) || byId.has(id)) continue;
    const parent = mntOf.get(Number(e.ppid));
    if (parent === undefined) throw badInput(`pid ${pid} lives in mount namespace ${id} of its own, and its parent ${e.ppid} has none recorded before it`, { pid });
    if (!existsSync(join(dir, `mountpoints-${id}.img`))) throw badInput(`pid ${pid} lives in mount namespace ${id} below the root's, and mountpoints-${id}.img is missing`, { pid, image: `mountpoints-${id}.img` });
    const mounts = await mountsOf(dir, id);
    byId.set(id, { id, parent, first: pid, mounts });
    for (const m of mounts) owner.set(m.id, pid);
  }
  return { byId, owner };
}

/** The network namespaces of a tree: the root's (by id) and those below it, each made again. */
export interface TreeNets {
  /** the root's net_ns_id (undefined: the images do not say) */
  root?: number;
  byId: Map<number, NetPlan>;
}

/**
 * The network namespaces below the root's (ids-<pid>.img net_ns_id neither the root's nor
 * criu's, root_ids), in the tree's order, each as the root's is read (netdev-, netns-, ifaddr-,
 * route-... <id>.img): the restore makes them all before the root and puts each task in its own.
 */
export async function nestedNetNamespaces(dir: string, pstree: readonly Obj[], treeIds: readonly (Obj | undefined)[], rootIds: Obj): Promise<TreeNets> {
  const byId = new Map<number, NetPlan>();
  let root: number | undefined;
  for (const [i, e] of pstree.entries()) {
    const pid = Number(e.pid);
    const ids = treeIds[i];
    if (ids?.net_ns_id === undefined || ids.net_ns_id === null) continue;
    const id = Number(ids.net_ns_id);
    if (i === 0) root = id;
    if (id === root || (rootIds.net_ns_id !== undefined && id === Number(rootIds.net_ns_id)) || byId.has(id)) continue;
    const f = `netns-${id}.img`;
    if (!existsSync(join(dir, f))) throw badInput(`pid ${pid} lives in network namespace ${id} below the root's, and ${f} is missing`, { pid, image: f });
    const netns = await img(dir, f, 'NETNS');
    if (netns?.[0]?.ext_key !== undefined) throw unsupported(`${f}: network namespace ${id} below the root's was dumped as an external one, which restore does not join`, { image: f });
    // (a device there whose peer is outside the tree has no name to go by: none is given for it)
    byId.set(id, await netNamespace(dir, id, netns, { veths: new Map(), macvlans: new Map() }));
  }
  return { ...(root !== undefined ? { root } : {}), byId };
}

/**
 * Every task but the root lives in its parent's namespaces, but the first task of a mount
 * namespace below the root's (`nested`), which makes it again, and a task in another of the
 * tree's network namespaces (`nets`: the root's or one below it), which enters it.
 */
export function checkTaskNamespaces(pid: number, ids: Obj, parentIds: Obj, below?: ReadonlyMap<number, NestedMntNs>, nets?: TreeNets): void {
  const netId = Number(ids.net_ns_id);
  const made = (k: NsKind) => (k === 'mnt' && below?.get(Number(ids.mnt_ns_id))?.first === pid) || (k === 'net' && !!nets && (netId === nets.root || nets.byId.has(netId)));
  const nested = NS_KINDS.filter((k) => ids[`${k}_ns_id`] !== undefined && parentIds[`${k}_ns_id`] !== undefined && Number(ids[`${k}_ns_id`]) !== Number(parentIds[`${k}_ns_id`]) && !made(k));
  if (nested.length) {
    throw unsupported(`pid ${pid} lives in ${nested.join(', ')} namespace${nested.length > 1 ? 's' : ''} other than its parent's (nested namespaces), which restore does not recreate`, { pid });
  }
}
