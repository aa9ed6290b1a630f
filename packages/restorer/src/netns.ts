/**
 * The network namespace of a restored tree, made before its root (which is born inside it, and
 * in which the TCP connections are made in repair mode), in CRIU 4.2's order: the namespace's
 * sysctls ("all", then "default", unix, ipv4), each link made or set (loopback: flags and MTU;
 * veth: made at its index with its address, its peer either the link of this namespace it was
 * or, when it was outside the tree, a device named by the caller in criu's own namespace; macvlan:
 * made on the device of criu's namespace the caller names, at its index, mode and flags; a veth
 * the caller made beforehand, `--external netdev[IN]:OUT`, moved in from criu's namespace; a
 * veth whose peer is in another of the tree's network namespaces: the pair made once, by the
 * first of the two set up, its peer end in the other at its index and name; bridges, made with
 * the kernel's defaults, their ports put in them once every link exists), its
 * own sysctls written before it is brought up, then `ip addr restore`, `ip route restore` (IPv4, IPv6), the default rules flushed
 * and `ip rule restore`, `iptables-restore -w` and `ip6tables-restore -w` (the legacy ones when
 * nft's ruleset is there too), and `nft -f`, each run inside it.
 */
import { closeSync, constants as fsConstants, openSync, readlinkSync } from 'node:fs';
import { NET_CONF4, NET_CONF6, NET_IPV4_SYSCTLS, NET_UNIX_CONF, netConfPath } from '@crtools/procfs';
import { addBridge, addMacvlan, addVeth, createNetNamespace, enslaveLink, IFF_PERSIST, IFF_UP, legacyXtablesTool, moveLink, namespaceFilesAt, netLinks, netnsTool, setLink, setLinkMaster, setNetnsId, setTunDevice, syncLinkState, tunAttach } from '@crtools/sys';
import { withoutLockRules } from '@crtools/files/plan';
import { ExitCode, silentLogger, sleepSync, type Logger } from '@crtools/common';
import type { NamespacePlan, NetLinkPlan, NetPlan, RestorePlan } from './plan.js';
import { RestoreErrorCode, restoreError } from './errors.js';

export interface MadeNetNamespace {
  fd: number;
  /** /proc/PID/fd/N of the descriptor (PID this process, so that other processes can open it too) */
  path: string;
  /** the tree's other network namespaces being made with it (some made ahead: a veth pair across) */
  tree?: TreeNetNamespaces;
  close(): void;
}

/** [file, value] for each kept value of a per-device list; accept_redirects last (after forwarding, as CRIU). */
function confWrites(proto: 'ipv4' | 'ipv6', dev: string, values: (string | null)[], names: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  let late: [string, string] | undefined;
  names.forEach((n, i) => {
    const v = values[i];
    if (v === null || v === undefined) return;
    const w: [string, string] = [netConfPath(proto, dev, n), v];
    if (n === 'accept_redirects') late = w;
    else out.push(w);
  });
  if (late) out.push(late);
  return out;
}

/**
 * The tree's network namespaces by id while they are made (the root's first, then those below
 * it: nestedNetNamespaces), so that a veth pair across two of them can be made by the first of
 * the two: the other is made ahead (empty; set up when its turn comes, `take`). As CRIU 4.2,
 * every one of them is there, and knows the others by the ids it knew them by (NetPlan.nsids),
 * before the first link is made (`prepare`): the kernel would give ids of its own choosing as
 * soon as a pair across is made.
 */
export class TreeNetNamespaces {
  private readonly fds = new Map<number, number>();
  private readonly ahead = new Map<number, number>();
  private prepared = false;

  /** `nets`: every network namespace of the tree to make, by id; `userFd`: the user namespace they are made in (undefined: this process's) */
  constructor(private readonly nets: ReadonlyMap<number, NetPlan>, private readonly userFd?: number) {}

  /** Namespace `id` is the one `fd` holds (made or joined by its owner, who closes it). */
  register(id: number, fd: number): void {
    if (!this.fds.has(id)) this.fds.set(id, fd);
  }

  /** The namespace made ahead for `id`, handed to the one who sets it up (and closes it); undefined: none. */
  take(id: number): number | undefined {
    const fd = this.ahead.get(id);
    this.ahead.delete(id);
    return fd;
  }

  /** The descriptor on namespace `id`: made ahead when it is not yet. */
  fd(id: number): number {
    let fd = this.fds.get(id);
    if (fd === undefined) {
      fd = createNetNamespace(this.userFd);
      this.fds.set(id, fd);
      this.ahead.set(id, fd);
    }
    return fd;
  }

  /**
   * Before the first link of any of them: when one knows another by an id, or a veth pair goes
   * across two, every one is made (ahead) and given the ids it knows the others by.
   */
  prepare(): void {
    if (this.prepared) return;
    this.prepared = true;
    const across = [...this.nets.values()].some((n) => n.nsids?.size || n.links.some((l) => l.peer?.ns));
    if (!across) return;
    for (const id of this.nets.keys()) this.fd(id);
    for (const [id, net] of this.nets) {
      for (const [target, nsid] of net.nsids ?? []) setNetnsId(`/proc/${process.pid}/fd/${this.fd(id)}`, this.fd(target), nsid);
    }
  }

  /** The namespaces made ahead that no one took (a restore that failed before their turn). */
  close(): void {
    for (const fd of this.ahead.values()) closeSync(fd);
    this.ahead.clear();
  }
}

/** Every network namespace of a plan's tree to make, by id: the root's and those below it. */
export function treeNets(plan: RestorePlan): Map<number, NetPlan> {
  const ns = plan.namespaces;
  return new Map([...(ns?.net ? [[ns.net.id, ns.net] as const] : []), ...(ns?.nestedNets ?? [])]);
}

/**
 * A veth of the namespace (`path`, held by `fd`) at its dumped index, with its peer: the link of
 * `links` it was (made here too, at its index under its name), a link of another of the tree's
 * namespaces (made there, at its index under its name, unless that one made the pair first), or
 * a device in criu's own namespace named by the caller, put in the bridge named with it. A veth
 * pair dies with the namespace: a restore that fails after this leaves neither end.
 */
function makeVeth(path: string, fd: number, l: NetLinkPlan, links: readonly NetLinkPlan[], log: Logger, tree?: TreeNetNamespaces): void {
  const end = { name: l.name, ifindex: l.ifindex, mtu: l.mtu, ...(l.address ? { address: l.address } : {}) };
  const across = l.peer!.ns;
  if (across) {
    if (!tree) throw new Error(`veth ${l.name}: its peer is in network namespace ${across.id}, which is not made with this one`);
    if (netLinks(path).some((x) => x.ifindex === l.ifindex && x.name === l.name)) return;
    addVeth(path, end, { nsFd: tree.fd(across.id), name: across.name, ifindex: l.peer!.ifindex });
    log.info(`net: veth pair ${l.name} (${l.ifindex}) and ${across.name} (${l.peer!.ifindex}) of network namespace ${across.id} made`);
    return;
  }
  const outside = l.peer!.outside;
  if (!outside) {
    const p = links.find((x) => x.ifindex === l.peer!.ifindex);
    if (!p) throw new Error(`veth ${l.name}: its peer (index ${l.peer!.ifindex}) is not among the namespace's devices`);
    addVeth(path, end, { nsFd: fd, name: p.name, ifindex: p.ifindex });
    log.info(`net: veth pair ${l.name} (${l.ifindex}) and ${p.name} (${p.ifindex}) made`);
    return;
  }
  const own = openSync('/proc/self/ns/net', 'r');
  try {
    addVeth(path, end, { nsFd: own, name: outside.name });
  } finally {
    closeSync(own);
  }
  if (outside.bridge) enslaveLink('', outside.name, outside.bridge);
  log.info(`net: veth ${l.name} (${l.ifindex}) made, its peer ${outside.name} in criu's network namespace${outside.bridge ? `, in bridge ${outside.bridge}` : ''}`);
}

const RTM_NEWROUTE = 24;
/** RTNH_F_DEAD | RTNH_F_LINKDOWN: the kernel's view of a route's link, not a route's own; a new route may not carry them */
const RTNH_F_KERNEL = 0x1 | 0x10;

/**
 * `ip route save`'s output (its magic word, then the RTM_NEWROUTE messages as the kernel sent
 * them) without the flags the kernel computes from the link's state: a route of a device without
 * carrier (a veth whose peer is down) is saved "linkdown", which `ip route restore` cannot add
 * back (EINVAL; CRIU 4.2's restore fails there). The kernel sets them again if the link is
 * still down.
 */
export function withoutLinkStateFlags(saved: Buffer | undefined): Buffer | undefined {
  if (!saved || saved.length < 4) return saved;
  let out: Buffer | undefined;
  for (let off = 4; off + 28 <= saved.length;) {
    const len = saved.readUInt32LE(off);
    if (len < 16 || off + len > saved.length) break;
    if (saved.readUInt16LE(off + 4) === RTM_NEWROUTE && len >= 28) {
      const flags = saved.readUInt32LE(off + 24);
      if (flags & RTNH_F_KERNEL) {
        out ??= Buffer.from(saved);
        out.writeUInt32LE((flags & ~RTNH_F_KERNEL) >>> 0, off + 24);
      }
    }
    off += (len + 3) & ~3;
  }
  return out ?? saved;
}

const RTM_NEWADDR = 20;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
/** an address's IFA_F_TENTATIVE (its duplicate address detection not done): in netlink's flags and /proc/net/if_inet6's */
const IFA_F_TENTATIVE = 0x40;

/**
 * The addresses `ip addr save` printed (its magic word, then RTM_NEWADDR messages), each as
 * "INDEX FAMILY/PREFIX ADDRESS(hex)", sorted: what two namespaces hold compared without what
 * changes by itself (lifetimes, the kernel's flags, sequence numbers).
 */
export function savedAddresses(saved: Buffer | undefined): string[] {
  return savedAddressRecords(saved).map((r) => `${r.index} ${r.family}/${r.prefixlen} ${r.local.toString('hex')}`).sort();
}

/** IFA_FLAGS: an address's flags in full (ifaddrmsg holds the low 8 bits) */
const IFA_FLAGS = 8;

/** Each address of an `ip addr save` dump: its link's index, family, prefix length, flags (IFA_F_*) and local address. */
function savedAddressRecords(saved: Buffer | undefined): { index: number; family: number; prefixlen: number; flags: number; local: Buffer }[] {
  const out: { index: number; family: number; prefixlen: number; flags: number; local: Buffer }[] = [];
  if (!saved || saved.length < 4) return out;
  for (let off = 4; off + 24 <= saved.length;) {
    const len = saved.readUInt32LE(off);
    if (len < 16 || off + len > saved.length) break;
    if (saved.readUInt16LE(off + 4) === RTM_NEWADDR) {
      let local: Buffer | undefined;
      let address: Buffer | undefined;
      let flags = saved[off + 18]!;
      for (let a = off + 24; a + 4 <= off + len;) {
        const alen = saved.readUInt16LE(a);
        if (alen < 4) break;
        const type = saved.readUInt16LE(a + 2) & 0x3fff;
        if (type === IFA_LOCAL) local = saved.subarray(a + 4, a + alen);
        if (type === IFA_ADDRESS) address = saved.subarray(a + 4, a + alen);
        if (type === IFA_FLAGS && alen >= 8) flags = saved.readUInt32LE(a + 4);
        a += (alen + 3) & ~3;
      }
      out.push({ index: saved.readUInt32LE(off + 20), family: saved[off + 16]!, prefixlen: saved[off + 17]!, flags, local: local ?? address ?? Buffer.alloc(0) });
    }
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * Make the namespace (or set up `made`, a new one made elsewhere: in the tree's user namespace,
 * userns.ts, which keeps it open and closes it); a failure closes a namespace made here and throws.
 */
export function makeNetNamespace(net: NetPlan, log: Logger = silentLogger, made?: number, tree?: TreeNetNamespaces): MadeNetNamespace {
  const fd = made ?? createNetNamespace();
  tree?.register(net.id, fd);
  const path = `/proc/${process.pid}/fd/${fd}`;
  try {
    const write = (writes: [string, string][]) => {
      if (writes.length) namespaceFilesAt(path, 'net', { writes });
    };
    write([...confWrites('ipv4', 'all', net.all4, NET_CONF4), ...confWrites('ipv4', 'default', net.def4, NET_CONF4)]);
    write([...confWrites('ipv6', 'all', net.all6, NET_CONF6), ...confWrites('ipv6', 'default', net.def6, NET_CONF6)]);
    write(NET_UNIX_CONF.flatMap((f, i) => (net.unix[i] == null ? [] : [[f, net.unix[i]!] as [string, string]])));
    write(NET_IPV4_SYSCTLS.flatMap((f, i) => (net.ipv4[i] == null ? [] : [[f, net.ipv4[i]!] as [string, string]])));
    tree?.prepare();
    const made = new Set<number>();
    for (const l of net.links) {
      if (l.kind === 'veth' && l.moveFrom) {
        moveLink(l.moveFrom, fd, { name: l.name, ifindex: l.ifindex });
        log.info(`net: ${l.moveFrom} of criu's network namespace moved in as veth ${l.name} (${l.ifindex})`);
      } else if (l.kind === 'veth' && !made.has(l.ifindex)) makeVeth(path, fd, l, net.links, log, tree);
      if (l.kind === 'macvlan') {
        addMacvlan({ name: l.name, ifindex: l.ifindex, mtu: l.mtu, ...(l.address ? { address: l.address } : {}), mode: l.macvlan!.mode, ...(l.macvlan!.flags !== undefined ? { flags: l.macvlan!.flags } : {}) }, l.macvlan!.lower, fd);
        log.info(`net: macvlan ${l.name} (${l.ifindex}) made on ${l.macvlan!.lower} of criu's network namespace`);
      }
      // (its address and MTU once its ports are in: one it takes from them is not set, as its owner did not)
      if (l.kind === 'bridge') {
        addBridge(path, { name: l.name, ifindex: l.ifindex, mtu: l.mtu });
        log.info(`net: bridge ${l.name} (${l.ifindex}) made`);
      }
      // made persistent, whatever it was: the first file attached to one that was not drops that (tun.ts)
      if (l.kind === 'tun') {
        const t = l.tun!;
        const dev = tunAttach(path, l.name, t.flags & 0xffff & ~IFF_PERSIST, fsConstants.O_RDWR, l.ifindex);
        try {
          setTunDevice(dev, { owner: t.owner, group: t.group, sndbuf: t.sndbuf, vnethdr: t.vnethdr, persist: true });
        } finally {
          closeSync(dev);
        }
        // (no file holds it now: its carrier is off, which the kernel says a little later unless asked)
        syncLinkState(path, l.ifindex);
        log.info(`net: tun device ${l.name} (${l.ifindex}) made`);
      }
      made.add(l.ifindex);
      if (l.peer && !l.peer.outside && !l.peer.ns) made.add(l.peer.ifindex);
    }
    // the bridges' ports, once both exist
    for (const l of net.links) {
      if (l.master === undefined) continue;
      setLinkMaster(path, l.ifindex, l.master);
      log.info(`net: ${l.name} put in bridge ${net.links.find((m) => m.ifindex === l.master)?.name}`);
    }
    const now = new Map(netLinks(path).map((x) => [x.ifindex, x]));
    // IPv6 duplicate address detection held off while the links come up and their addresses are
    // given back (accept_dad 0 for "all" and each link brought up, the dumped values written again
    // once `ip addr restore` is done and no address is tentative any more): the addresses were in
    // use at the dump, not tentative, and a link-local one made tentative again would have no
    // local route for a second after the tasks run (a link's address and route missing from what
    // the tree saw). The kernel looks at accept_dad when an address's DAD work runs, up to
    // router_solicitation_delay (1 s) after it is added: that delay is held at 0 meanwhile too,
    // and the values go back once each such address is done. A link with an address still
    // tentative at the dump (DAD under way: zdtm bridge dumps its bridge right after setting it
    // up) is left to DAD, its addresses tentative again as they were
    const tentativeAt = new Set(savedAddressRecords(net.raw.ifaddr).filter((r) => r.flags & IFA_F_TENTATIVE).map((r) => r.index));
    const DAD = NET_CONF6.indexOf('accept_dad');
    const RS_DELAY = NET_CONF6.indexOf('router_solicitation_delay');
    const dadBack: [string, string][] = [];
    const held: string[] = [];
    const holdDad = (dev: string, v: string | null | undefined, delay?: string | null) => {
      if (v === null || v === undefined || Number(v) < 1) return;
      const back: [string, string][] = [[netConfPath('ipv6', dev, 'accept_dad'), v]];
      if (dev !== 'all') {
        held.push(dev);
        if (delay !== null && delay !== undefined && Number(delay) !== 0) back.push([netConfPath('ipv6', dev, 'router_solicitation_delay'), delay]);
      }
      write(back.map(([f]) => [f, '0']));
      dadBack.push(...back);
    };
    if (net.links.some((l) => l.flags & IFF_UP)) holdDad('all', net.all6[DAD]);
    for (const l of net.links) {
      // its MTU and address, its sysctls, then up: what the sysctls say (accept_dad, autoconf...)
      // holds from the moment it is up, as when the tree's owner set it up (a bridge's address
      // only when it is not already the one it took from its ports: setting it pins it)
      const keep = l.kind === 'bridge' && l.address && now.get(l.ifindex)?.address?.equals(l.address);
      const set = { name: l.name, mtu: l.mtu, ...(l.address && !keep ? { address: l.address } : {}) };
      setLink(path, { ...set, flags: l.flags & ~IFF_UP });
      write(confWrites('ipv4', l.name, l.conf4, NET_CONF4));
      write(confWrites('ipv6', l.name, l.conf6, NET_CONF6));
      if (l.flags & IFF_UP) {
        if (!tentativeAt.has(l.ifindex)) holdDad(l.name, l.conf6[DAD], l.conf6[RS_DELAY]);
        setLink(path, { ...set, flags: l.flags });
        // bringing a link up sets its IPv6 MTU (conf/DEV/mtu) to the device's: written again
        // (zdtm's netns-dev: lo's set to 1280 came back 65536)
        write(confWrites('ipv6', l.name, l.conf6, NET_CONF6).filter(([f]) => f.endsWith('/mtu')));
      }
    }
    const feed = (argv: string[], data: Buffer | undefined) => {
      if (data?.length) netnsTool(path, argv, { input: data });
    };
    feed(['ip', 'addr', 'restore'], net.raw.ifaddr);
    if (held.length) untilNoTentative(path, held);
    write(dadBack);
    feed(['ip', 'route', 'restore'], withoutLinkStateFlags(net.raw.route));
    feed(['ip', 'route', 'restore'], withoutLinkStateFlags(net.raw.route6));
    if (net.raw.rule?.length) {
      // the namespace's three default rules go first, or they would be there twice
      netnsTool(path, ['ip', 'rule', 'flush']);
      netnsTool(path, ['ip', 'rule', 'delete', 'table', 'local']);
      feed(['ip', 'rule', 'restore'], net.raw.rule);
    }
    // without the network lock a dump saved with them (withoutLockRules); with nft's ruleset
    // (nftables-<id>.img: a dump by crtools or by a CRIU built with libnftables) the iptables
    // images hold the legacy backend's tables only
    const nft = net.raw.nftables;
    for (const [tool, data] of [['iptables-restore', net.raw.iptables], ['ip6tables-restore', net.raw.ip6tables]] as const) {
      if (!data?.length) continue;
      const bin = nft ? legacyXtablesTool(tool) : tool;
      if (!bin) throw new Error(`${tool === 'iptables-restore' ? 'iptables' : 'ip6tables'}-${net.id}.img holds tables of the legacy iptables backend, and no legacy ${tool} is installed (Debian: iptables-legacy-restore, package iptables)`);
      feed([bin, '-w'], withoutLockRules(data, 'iptables'));
    }
    if (nft?.length) feed(['nft', '-f', '-'], withoutLockRules(nft, 'nft'));
    log.info(`net: network namespace ${net.id} made (${net.links.map((l) => l.name).join(', ')})`);
  } catch (e) {
    if (made === undefined) closeSync(fd);
    throw e;
  }
  return { fd, path, close: () => (made === undefined ? closeSync(fd) : undefined) };
}

/**
 * Wait (up to 2 s) until no IPv6 address of the links `devs` of the network namespace `nsPath`
 * is tentative (/proc/net/if_inet6 read inside it): with duplicate address detection held off,
 * each address's DAD work clears the flag when it runs.
 */
function untilNoTentative(nsPath: string, devs: readonly string[]): void {
  const watched = new Set(devs);
  for (const end = Date.now() + 2000; Date.now() < end; ) {
    const text = namespaceFilesAt(nsPath, 'net', { reads: ['/proc/thread-self/net/if_inet6'], optional: true })[0] ?? '';
    const tentative = text.split('\n').some((l) => {
      const f = l.trim().split(/\s+/);
      return f.length >= 6 && watched.has(f[5]!) && (parseInt(f[4]!, 16) & IFA_F_TENTATIVE) !== 0;
    });
    if (!tentative) return;
    sleepSync(5);
  }
}

/**
 * The root's network namespace, when it has one of its own: made as dumped, or empty (--empty-ns
 * net: not dumped, its caller configures it, as runc does), or the caller's (dumped as external:
 * the inherited descriptor); undefined when it has none.
 */
export function treeNetNamespace(ns: NamespacePlan | undefined, log: Logger = silentLogger, made?: number, tree?: TreeNetNamespaces): MadeNetNamespace | undefined {
  if (ns?.net) return makeNetNamespace(ns.net, log, made, tree);
  if (ns?.extNet) {
    // the caller's namespace (--inherit-fd fd[N]:KEY): joined as it is, left to the caller
    const { key, fd } = ns.extNet;
    let link = '';
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      /* not open: said below */
    }
    if (!link.startsWith('net:[')) throw new Error(`--inherit-fd fd[${fd}]:${key}: descriptor ${fd} is not a network namespace (${link || 'not open'})`);
    log.info(`net: the tree joins the caller's network namespace ${link} (${key})`);
    return { fd, path: `/proc/${process.pid}/fd/${fd}`, close: () => undefined };
  }
  if (!ns?.emptyNet) return undefined;
  const fd = made ?? createNetNamespace();
  log.info('net: an empty network namespace made (--empty-ns net)');
  return { fd, path: `/proc/${process.pid}/fd/${fd}`, close: () => (made === undefined ? closeSync(fd) : undefined) };
}

/** The network namespaces of a tree the restorer holds for its tasks (nestedNetNamespaces). */
export interface TreeNetFds {
  /** the root's: made for it, or this process's own */
  root: number;
  /** those below the root's, by id (in the plan's order) */
  byId: Map<number, number>;
  close(): void;
}

/**
 * The network namespaces below the root's (NamespacePlan.nestedNets), each made and set up as the
 * root's is (makeNetNamespace), with a descriptor on the root's (`rootNet`, or this process's own
 * when the root lives in it); undefined when the tree has none. A failure closes what was made.
 */
export function nestedNetNamespaces(plan: RestorePlan, rootNet: MadeNetNamespace | undefined, log: Logger = silentLogger, userFd?: number, tree?: TreeNetNamespaces): TreeNetFds | undefined {
  const nested = plan.namespaces?.nestedNets;
  if (!nested?.size) return undefined;
  // in a tree with a user namespace of its own they belong to it: made there (userns.ts made it
  // first, or it is the one joined)
  if (plan.namespaces?.userns && userFd === undefined) {
    throw restoreError(RestoreErrorCode.UNSUPPORTED, 'restore: network namespaces below the root\'s in a tree with a user namespace of its own are restored only with that user namespace made first or joined', {}, ExitCode.UNSUPPORTED);
  }
  const made: MadeNetNamespace[] = [];
  const own = rootNet ? undefined : openSync('/proc/self/ns/net', 'r');
  const close = () => {
    for (const m of made.splice(0)) m.close();
    if (own !== undefined) closeSync(own);
  };
  const byId = new Map<number, number>();
  // (the root's, for a veth pair across it and one below it: one made ahead by it is taken here)
  const nets = tree ?? new TreeNetNamespaces(treeNets(plan), userFd);
  const rootId = plan.namespaces?.rootNetId ?? plan.namespaces?.net?.id;
  if (rootId !== undefined && rootNet) nets.register(rootId, rootNet.fd);
  try {
    for (const [id, net] of nested) {
      let m: MadeNetNamespace;
      // (made ahead for a veth pair across, or here: in the tree's user namespace when it has one)
      const fd = nets.take(id) ?? createNetNamespace(userFd);
      try {
        const set = makeNetNamespace(net, log, fd, nets);
        m = { ...set, close: () => (set.close(), closeSync(fd)) };
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      made.push(m);
      byId.set(id, m.fd);
    }
    nets.close();
  } catch (e) {
    nets.close();
    close();
    throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot make a network namespace below the root's: ${(e as Error).message}`, {}, ExitCode.FAILED, e as Error);
  }
  log.info(`net: ${nested.size} network namespace(s) below the root's made (${[...nested.keys()].join(', ')})`);
  return { root: rootNet?.fd ?? own!, byId, close };
}
