/**
 * The network namespace of a tree's root, when it is not criu's, as CRIU 4.2 dumps it: its links
 * (netdev-<id>.img: loopback; veths, whose peer is another link of the namespace, a link of
 * another of the tree's network namespaces (peer_nsid: its id, found through the id this one
 * knows it by, netns-<id>.img nsids) or outside the tree, named by the caller at restore;
 * macvlans on a device outside the tree, also named at restore; bridges, with their ports'
 * `master`, as long as their own settings are a new bridge's (CRIU keeps none of them: one
 * changed is refused by name); tun/tap devices (tun_link_entry: flags,
 * owner and group as sysfs shows them inside, vnet header size and send buffer as a file attached
 * to the device says: the tree's own, or for a persistent device no file holds, one attached for
 * the while when it is down: one that is up is refused by name); any other device is refused by name), their and the
 * namespace's sysctls (conf4/conf6 per device, netns-<id>.img: "all" and "default", unix and
 * ipv4 ones), and what `ip` and `iptables-save` print inside it, kept raw (ifaddr-<id>.img,
 * route-<id>.img, route6-<id>.img, rule-<id>.img, iptables-<id>.img, ip6tables-<id>.img).
 * The tables are kept as CRIU 4.2 built with libnftables keeps them (Debian's criu is): nft's
 * `list ruleset` in nftables-<id>.img (iptables-nft's tables are nftables too), and only the
 * legacy backend's tables in iptables-<id>.img and ip6tables-<id>.img (iptables-legacy-save;
 * none when that is not installed); a network lock taken by the dump is left out, and a ruleset
 * nft could not read back (`nft -c` in a new namespace) is refused by name. Without nft, the
 * iptables tools' text is kept as a CRIU built without libnftables keeps it. Conntrack entries
 * are not carried (CRIU writes them only where it may read them, and a new namespace starts
 * without).
 * Everything is read in check(), on the frozen tree and before any TCP connection is locked, so
 * the tables saved are the tree's own.
 */
// node:fs/promises taken when first called: loading it (node's readline and file watchers come
// with it) costs a few ms of every start-up
const fsp = () => process.getBuiltinModule('node:fs/promises');
import { closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { writeImageFile, type Entry } from '@crtools/images';
import { ND_TYPE } from '@crtools/images/facts';
import { NET_CONF4, NET_CONF6, NET_CONF6_STRING, NET_IPV4_SYSCTLS, NET_UNIX_CONF, netConfPath } from '@crtools/procfs';
import { ARPHRD_LOOPBACK, bridgeSettingsChanged, createNetNamespace, IFF_PERSIST, IFF_UP, legacyXtablesTool, namespaceFilesAt, netLinks, netnsTool, persistentTunDevice, type NetLink, type TunFileInfo } from '@crtools/sys';
import { tunLinkKey, withoutLockRules, type TunLinks } from '@crtools/files/dump';

/**
 * Why `nft -f` would not take `rules` back (the first line of nft's complaint, checked with
 * `nft -c` in a new, empty network namespace: rules iptables-nft made with matches nft cannot
 * express list as it cannot parse); undefined when it would.
 */
function nftCannotRead(rules: Buffer): string | undefined {
  const fd = createNetNamespace();
  try {
    netnsTool(`/proc/${process.pid}/fd/${fd}`, ['nft', '-c', '-f', '-'], { input: rules });
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^.*failed: /, '');
  } finally {
    closeSync(fd);
  }
}
/** ping_group_range as a new namespace has it: CRIU keeps no value then */
const PING_DEFAULT = '1\t0';

type Sysctl = { type: 'CTL_32' | 'CTL_STR'; iarg?: number; sarg?: string };

function refuse(pid: number, what: string, ns = `the tree's network namespace (root ${pid})`): CrtoolsError {
  return new CrtoolsError('UNSUPPORTED_NS', `${ns} holds ${what}, which crtools does not carry (crtools issue 17)`, {
    context: { pid, namespaces: 'net' }, exitCode: ExitCode.UNSUPPORTED,
  });
}

/** A network namespace's packet filter tables as the images keep them (saveNetTables). */
export interface SavedNetTables {
  raw: { kind: 'iptables' | 'ip6tables' | 'nftables'; data: Buffer }[];
  /** why nft could not read its ruleset back (refused by name) */
  unreadable?: string;
}

/**
 * The packet filter tables of the network namespace `nsPath` names, as the images keep them
 * (see above): read by the dump before it locks the namespace, so that the lock is not among
 * them (one taken by an earlier dump and never lifted is left out too: withoutLockRules).
 */
export function saveNetTables(nsPath: string): SavedNetTables {
  const raw: SavedNetTables['raw'] = [];
  const tool = (kind: 'iptables' | 'ip6tables', bin: string) => {
    const data = netnsTool(nsPath, [bin]);
    if (data) raw.push({ kind, data: withoutLockRules(data, 'iptables') });
  };
  const ruleset = netnsTool(nsPath, ['nft', 'list', 'ruleset'], { canFail: true });
  if (ruleset === null) {
    tool('iptables', 'iptables-save');
    tool('ip6tables', 'ip6tables-save');
    return { raw };
  }
  const save4 = legacyXtablesTool('iptables-save');
  const save6 = legacyXtablesTool('ip6tables-save');
  if (save4) tool('iptables', save4);
  if (save6) tool('ip6tables', save6);
  const rules = withoutLockRules(ruleset, 'nft');
  if (!rules.toString().trim()) return { raw };
  const unreadable = nftCannotRead(rules);
  if (unreadable) return { raw, unreadable };
  raw.push({ kind: 'nftables', data: rules });
  return { raw };
}

export class NetNamespaceDump {
  private readonly nsPath: string;
  private links: NetLink[] = [];
  private sysctls = new Map<string, string | null>();
  private raw: { file: string; data: Buffer }[] = [];
  /** its tun devices by name: sysfs's flags, owner and group, and what a file attached to a persistent one no file holds said */
  private tuns = new Map<string, { flags: number; owner: number; group: number; info?: TunFileInfo }>();
  /** the ids this namespace knows the tree's other network namespaces by: its nsid → the image id (setPeers) */
  private peers = new Map<number, number>();

  /**
   * rootPid: a task living in the namespace (the tree's root, or the first task of a namespace
   * below the root's); what: how refusals name the namespace (default: the tree's, the root's);
   * tables: its tables as saved before the dump locked it (saveNetTables), else read in check()
   */
  constructor(private readonly rootPid: number, private readonly id: number, private readonly refusals: Refusals, private readonly what?: string, private readonly tables?: SavedNetTables) {
    this.nsPath = `/proc/${rootPid}/ns/net`;
  }

  /** The veths and macvlans whose peer or lower device is in another namespace (IFLA_LINK_NETNSID), once checked. */
  crossLinks(): readonly NetLink[] {
    return this.links.filter((l) => (l.kind === 'veth' || l.kind === 'macvlan') && l.linkNetnsid !== undefined);
  }

  /** The path of the namespace's file (/proc/PID/ns/net of a task living in it). */
  get path(): string {
    return this.nsPath;
  }

  /**
   * The tree's other network namespaces as this one knows them (RTM_GETNSID: nsid → their image
   * id), written in netns-<id>.img and used for the peer_nsid of a veth whose peer is there.
   */
  setPeers(peers: ReadonlyMap<number, number>): void {
    this.peers = new Map(peers);
  }

  /** The image id of the namespace this one knows by `nsid` (a device's IFLA_LINK_NETNSID); undefined: not the tree's. */
  peerId(nsid: number): number | undefined {
    return this.peers.get(nsid);
  }

  private refusal(what: string): CrtoolsError {
    return refuse(this.rootPid, what, this.what);
  }

  /** Read the namespace, refusing by name what is not carried. */
  check(): void {
    this.links = netLinks(this.nsPath);
    for (const l of this.links) {
      if (l.type === ARPHRD_LOOPBACK) continue;
      if (l.kind === 'macvlan') {
        // (on a device of the namespace itself: CRIU would hang it on one of criu's at restore)
        if (l.linkNetnsid === undefined) this.refusals.refuse(this.refusal(`macvlan ${l.name} on ${this.links.find((m) => m.ifindex === l.link)?.name ?? 'a device'} of the namespace itself`));
        else if (!l.macvlan) this.refusals.refuse(this.refusal(`macvlan ${l.name} whose mode the kernel does not say`));
        continue;
      }
      if (l.kind === 'bridge') {
        // (CRIU makes a bridge anew, with the kernel's defaults)
        const changed = l.bridge ? bridgeSettingsChanged(l.bridge) : [];
        if (changed.length) this.refusals.refuse(this.refusal(`bridge ${l.name} whose settings are not a new bridge's (${changed.join(', ')}), which neither crtools nor CRIU 4.2 keeps`));
      } else if (l.kind === 'tun') this.refusals.check(() => this.checkTun(l.name));
      else if (l.kind !== 'veth') this.refusals.refuse(this.refusal(`network device ${l.name} (${l.kind ?? `link type ${l.type}`})`));
      // (a veth in a bond or another master: the master device is refused above)
      if (l.master !== undefined && this.links.find((m) => m.ifindex === l.master)?.kind !== 'bridge') {
        this.refusals.refuse(this.refusal(`${l.kind ?? 'device'} ${l.name} in master device ${this.links.find((m) => m.ifindex === l.master)?.name ?? l.master}, which is not a bridge of the namespace`));
      }
    }
    const files = [
      ...['all', 'default', ...this.links.map((l) => l.name)].flatMap((dev) => [
        ...NET_CONF4.map((n) => netConfPath('ipv4', dev, n)), ...NET_CONF6.map((n) => netConfPath('ipv6', dev, n)),
      ]),
      ...NET_UNIX_CONF, ...NET_IPV4_SYSCTLS,
    ];
    const texts = namespaceFilesAt(this.nsPath, 'net', { reads: files, optional: true }, { pid: this.rootPid });
    this.sysctls = new Map(files.map((f, i) => [f, texts[i]!]));
    // as CRIU: ip's own save formats and iptables-save's text, kept as they are
    const tool = (file: string, argv: string[], canFail = false) => {
      const data = netnsTool(this.nsPath, argv, { canFail });
      if (data) this.raw.push({ file: `${file}-${this.id}.img`, data });
    };
    tool('ifaddr', ['ip', 'addr', 'save']);
    tool('route', ['ip', 'route', 'save']);
    tool('route6', ['ip', '-6', 'route', 'save']);
    // (an `ip` without rule save: no image, as CRIU)
    tool('rule', ['ip', 'rule', 'save'], true);
    const t = this.tables ?? saveNetTables(this.nsPath);
    if (t.unreadable) this.refusals.refuse(this.refusal(`an nftables ruleset nft cannot read back (${t.unreadable})`));
    for (const r of t.raw) this.raw.push({ file: `${r.kind}-${this.id}.img`, data: r.data });
  }

  /**
   * A tun/tap device: its flags, owner and group as sysfs shows them inside the namespace (as
   * CRIU 4.2 reads them: a sysfs mounted there, in a mount namespace of the while); a persistent
   * one no file holds is attached to for the while for what only a file tells (vnet header size,
   * send buffer); one a file holds is told of by the tree's file (write()).
   */
  private checkTun(name: string): void {
    const out = netnsTool(this.nsPath, ['unshare', '--mount', 'sh', '-c', 'mount -t sysfs sysfs /sys && cd "/sys/class/net/$0" && cat tun_flags owner group', name]);
    const [flags, owner, group] = String(out).trim().split('\n').map((v) => Number.parseInt(v, v.startsWith('0x') ? 16 : 10));
    if (flags === undefined || owner === undefined || group === undefined || [flags, owner, group].some(Number.isNaN)) throw this.refusal(`tun device ${name} whose settings sysfs does not show`);
    const t: { flags: number; owner: number; group: number; info?: TunFileInfo } = { flags, owner, group };
    if (flags & IFF_PERSIST) {
      // (a file attached to a device that is up brings its carrier up, and IPv6 configures it:
      // the dump would change the tree's namespace; one of the tree's files may hold it, see write())
      const l = this.links.find((x) => x.name === name);
      if (l?.tunQueues) {
        this.tuns.set(name, t);
        return;
      }
      if ((l?.flags ?? 0) & IFF_UP) throw this.refusal(`persistent tun device ${name}, up, which no file is attached to (its vnet header size and send buffer are read through a file attached to it, which would bring its carrier up and IPv6 would configure it)`);
      try {
        t.info = persistentTunDevice(this.nsPath, name, flags);
      } catch (e) {
        // (a file came to hold it since: the tree's tells of it)
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
      }
      if (t.info?.filter) throw this.refusal(`tap device ${name} with a socket filter (TUNATTACHFILTER), which neither crtools nor CRIU 4.2 carries`);
    }
    this.tuns.set(name, t);
  }

  private entry(file: string, str = false): Sysctl {
    const t = this.sysctls.get(file);
    if (str) return t ? { type: 'CTL_STR', sarg: t.replace(/\n$/, '') } : { type: 'CTL_STR' };
    return t ? { type: 'CTL_32', iarg: Number.parseInt(t, 10) | 0 } : { type: 'CTL_32' };
  }

  private confs(dev: string): { conf4: Sysctl[]; conf6: Sysctl[] } {
    return {
      conf4: NET_CONF4.map((n) => this.entry(netConfPath('ipv4', dev, n))),
      conf6: NET_CONF6.map((n) => this.entry(netConfPath('ipv6', dev, n), n === NET_CONF6_STRING)),
    };
  }

  /**
   * netdev-<id>.img, netns-<id>.img and the raw images; the files written. tunLinks: what the
   * tree's /dev/net/tun files said of the devices they are attached to.
   */
  async write(dir: string, tunLinks?: TunLinks): Promise<string[]> {
    const ino = this.tuns.size ? statSync(this.nsPath).ino : 0;
    const devs: Entry[] = this.links.map((l) => {
      const c = this.confs(l.name);
      const veth = l.kind === 'veth';
      const macvlan = l.kind === 'macvlan';
      const bridge = l.kind === 'bridge';
      const tun = this.tuns.get(l.name);
      const e: Entry = { type: veth ? ND_TYPE.VETH : macvlan ? ND_TYPE.MACVLAN : bridge ? ND_TYPE.BRIDGE : tun ? ND_TYPE.TUN : ND_TYPE.LOOPBACK, ifindex: l.ifindex, mtu: l.mtu, flags: l.flags, name: l.name, conf4: c.conf4, conf6: c.conf6, peer_ifindex: l.link ?? l.ifindex };
      // as CRIU: the peer's namespace only when it is one of the dump's (loopback: itself; a
      // veth whose peer is in this namespace has no IFLA_LINK_NETNSID; one whose peer is in
      // another of the tree's, that one's id)
      const peerNs = l.linkNetnsid === undefined ? this.id : this.peers.get(l.linkNetnsid);
      if (peerNs !== undefined) e.peer_nsid = peerNs;
      if (l.type !== ARPHRD_LOOPBACK && l.address) e.address = l.address;
      if (l.master !== undefined) e.master = l.master;
      if (tun) {
        const info = tun.info ?? tunLinks?.get(tunLinkKey(ino, l.name));
        if (!info) throw refuse(this.rootPid, `tun device ${l.name}, which no file of the tree is attached to (a process outside the tree holds it)`, this.what);
        e.tun = { flags: tun.flags, owner: tun.owner, group: tun.group, vnethdr: info.vnethdr ?? 0, sndbuf: info.sndbuf ?? 0 };
      }
      if (macvlan) e.macvlan = { mode: l.macvlan!.mode, ...(l.macvlan!.flags !== undefined ? { flags: l.macvlan!.flags } : {}) };
      return e;
    });
    const all = this.confs('all');
    const def = this.confs('default');
    const ping = this.entry(NET_IPV4_SYSCTLS[0], true);
    if (ping.sarg === PING_DEFAULT) delete ping.sarg;
    const netns: Entry = {
      ...(this.peers.size ? { nsids: [...this.peers].map(([nsid, id]) => ({ target_ns_id: id, netnsid_value: nsid })) } : {}),
      def_conf4: def.conf4, all_conf4: all.conf4, def_conf6: def.conf6, all_conf6: all.conf6,
      unix_conf: NET_UNIX_CONF.map((f) => this.entry(f)), ipv4_sysctl: [ping],
    };
    const written = [`netdev-${this.id}.img`, `netns-${this.id}.img`];
    await writeImageFile(path.join(dir, written[0]!), { magic: 'NETDEV', entries: devs });
    await writeImageFile(path.join(dir, written[1]!), { magic: 'NETNS', entries: [netns] });
    for (const r of this.raw) {
      await fsp().writeFile(path.join(dir, r.file), r.data);
      written.push(r.file);
    }
    return written;
  }
}
