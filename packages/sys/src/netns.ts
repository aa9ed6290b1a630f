/**
 * Network namespaces: a new one held by a descriptor, its links as route netlink (rtnetlink)
 * shows them and sets them, and the namespace in which the sockets of sock_diag queries and TCP
 * repair are made (a socket belongs to the namespace it was made in, whichever thread uses it).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrtoolsError, ExitCode, isNativeSysError, syscallError } from '@crtools/common';
import { addon, orThrow } from './native.js';

/**
 * The network namespace the sock_diag queries (unixSockets, packetSockets, listen queues,
 * shutdown states) and the TCP repair sockets (tcpRestore) of this process go to from now on:
 * the one `nsPath` names (/proc/PID/ns/net, /proc/self/fd/N), or with undefined this
 * process's own again. A process-wide setting, as the current directory is.
 */
export function setSocketNamespace(nsPath: string | undefined): void {
  addon.get().setSocketNamespace(nsPath ?? '');
  socketNs = nsPath;
}

/** the namespace setSocketNamespace chose last (undefined: this process's own) */
let socketNs: string | undefined;

/**
 * `fn` run with the sock_diag queries going to the network namespace `nsPath` names (undefined:
 * where they go now), then back to where they went before, on every path.
 */
export function inSocketNamespace<T>(nsPath: string | undefined, fn: () => T): T {
  if (nsPath === undefined || nsPath === socketNs) return fn();
  const before = socketNs;
  setSocketNamespace(nsPath);
  try {
    return fn();
  } finally {
    setSocketNamespace(before);
  }
}

/**
 * A new network namespace (only loopback, down), held by the descriptor returned (close-on-exec);
 * with `userFd` (a descriptor on a user namespace), owned by that user namespace instead of this
 * process's.
 */
export function createNetNamespace(userFd?: number): number {
  return orThrow(userFd === undefined ? addon.get().netnsCreate() : addon.get().netnsCreate(userFd), 'unshare');
}

/** A link's administrative state in its flags (net/if.h): up. */
export const IFF_UP = 0x1;

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_SETLINK = 19;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const AF_PACKET = 17;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28, LINK_NETNSID: 37, NEW_IFINDEX: 49 } as const;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_MACVLAN = { MODE: 1, FLAGS: 2 } as const;
/** ARPHRD_LOOPBACK: ifinfomsg.ifi_type of a loopback device */
export const ARPHRD_LOOPBACK = 772;

/** One link of a network namespace, as RTM_GETLINK describes it. */
export interface NetLink {
  ifindex: number;
  /** ifi_type (ARPHRD_*) */
  type: number;
  /** ifi_flags (IFF_*) */
  flags: number;
  mtu: number;
  name: string;
  /** the link-layer address (absent: none) */
  address?: Buffer;
  /** IFLA_INFO_KIND ("veth", "dummy"...; absent for loopback and real devices) */
  kind?: string;
  master?: number;
  /** IFLA_LINK: the peer's or lower device's index */
  link?: number;
  /** IFLA_LINK_NETNSID: the namespace (by its id here) where that peer lives */
  linkNetnsid?: number;
  /** a macvlan's IFLA_INFO_DATA: IFLA_MACVLAN_MODE and, when the kernel says it, IFLA_MACVLAN_FLAGS */
  macvlan?: { mode: number; flags?: number };
  /** a tun/tap device: how many files are attached to it (its queues, detached ones too) */
  tunQueues?: number;
  /** a bridge's IFLA_INFO_DATA: its IFLA_BR_* attributes, type → value (bridgeSettingsChanged compares them) */
  bridge?: Map<number, Buffer>;
}

function rtnl(nsPath: string, request: Buffer): Buffer[] {
  const r = addon.get().rtnl(nsPath, request);
  if (isNativeSysError(r)) throw syscallError(r.syscall, r.errno, { path: nsPath || undefined });
  return r;
}

type Ifi = { index?: number; flags?: number; change?: number };

/** One netlink attribute (4-aligned); its value may be other attributes (nested). */
function nla(type: number, value: Buffer): Buffer {
  const a = Buffer.alloc((4 + value.length + 3) & ~3);
  a.writeUInt16LE(4 + value.length, 0);
  a.writeUInt16LE(type, 2);
  value.copy(a, 4);
  return a;
}

/** struct ifinfomsg */
function ifinfo(ifi: Ifi): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt8(AF_PACKET, 0);
  body.writeInt32LE(ifi.index ?? 0, 4);
  body.writeUInt32LE((ifi.flags ?? 0) >>> 0, 8);
  body.writeUInt32LE((ifi.change ?? 0) >>> 0, 12);
  return body;
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

/** A netlink message: header, ifinfomsg, attributes (each 4-aligned). */
function linkMessage(type: number, flags: number, ifi: Ifi, attrs: [number, Buffer][] = []): Buffer {
  const msg = Buffer.concat([Buffer.alloc(16), ifinfo(ifi), ...attrs.map(([t, v]) => nla(t, v))]);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(type, 4);
  msg.writeUInt16LE(flags, 6);
  msg.writeUInt32LE(1, 8);
  return msg;
}

/** The attributes of a netlink payload, type → value (the first of each type). */
function attributes(b: Buffer, off: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > b.length) break;
    const type = b.readUInt16LE(off + 2) & 0x3fff; // (NLA_F_NESTED / NET_BYTEORDER dropped)
    if (!out.has(type)) out.set(type, b.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

const cstring = (v: Buffer): string => v.toString('utf8', 0, v.indexOf(0) >= 0 ? v.indexOf(0) : v.length);

/** Every link of the network namespace `nsPath` names ("": ours), in the kernel's order. */
export function netLinks(nsPath: string): NetLink[] {
  return rtnl(nsPath, linkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, {})).flatMap((m) => {
    if (m.readUInt16LE(4) !== RTM_NEWLINK) return [];
    const a = attributes(m, 32);
    const info = a.get(IFLA.LINKINFO);
    const infos = info ? attributes(info, 0) : undefined;
    const kind = infos?.get(IFLA_INFO_KIND);
    const l: NetLink = {
      ifindex: m.readInt32LE(20), type: m.readUInt16LE(18), flags: m.readUInt32LE(24),
      mtu: a.get(IFLA.MTU)?.readUInt32LE(0) ?? 0, name: cstring(a.get(IFLA.IFNAME) ?? Buffer.alloc(0)),
    };
    const addr = a.get(IFLA.ADDRESS);
    if (addr) l.address = Buffer.from(addr);
    if (kind) l.kind = cstring(kind);
    const data = infos?.get(IFLA_INFO_DATA);
    if (l.kind === 'macvlan' && data) {
      const d = attributes(data, 0);
      const mode = d.get(IFLA_MACVLAN.MODE);
      const flags = d.get(IFLA_MACVLAN.FLAGS);
      if (mode) l.macvlan = { mode: mode.readUInt32LE(0), ...(flags ? { flags: flags.readUInt16LE(0) } : {}) };
    }
    if (l.kind === 'tun' && data) {
      // IFLA_TUN_NUM_QUEUES, IFLA_TUN_NUM_DISABLED_QUEUES: the files attached to it
      const d = attributes(data, 0);
      l.tunQueues = (d.get(8)?.readUInt32LE(0) ?? 0) + (d.get(9)?.readUInt32LE(0) ?? 0);
    }
    if (l.kind === 'bridge' && data) l.bridge = new Map([...attributes(data, 0)].map(([t, v]) => [t, Buffer.from(v)]));
    if (a.has(IFLA.MASTER)) l.master = a.get(IFLA.MASTER)!.readUInt32LE(0);
    if (a.has(IFLA.LINK)) l.link = a.get(IFLA.LINK)!.readUInt32LE(0);
    if (a.has(IFLA.LINK_NETNSID)) l.linkNetnsid = a.get(IFLA.LINK_NETNSID)!.readInt32LE(0);
    return [l];
  });
}

/**
 * Bring what the namespace `nsPath` names says of link `ifindex` (its operational state, IFF_RUNNING)
 * up to date with its carrier: a single RTM_GETLINK runs the link's pending link-watch event (the
 * kernel's rtnl_getlink), which otherwise waits up to a second. A tun device its maker attached a
 * file to and detached it from looks up (carrier on) until then, and IPv6 set up on it then would
 * see it ready.
 */
export function syncLinkState(nsPath: string, ifindex: number): void {
  rtnl(nsPath, linkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, { index: ifindex }));
}

/**
 * Set an existing link (found by name) of the namespace `nsPath` names: its flags (IFF_UP...;
 * the kernel's own bits such as IFF_RUNNING are ignored), MTU and, when given, its address.
 */
export function setLink(nsPath: string, l: { name: string; flags: number; mtu: number; address?: Buffer }): void {
  const attrs: [number, Buffer][] = [[IFLA.IFNAME, Buffer.from(l.name)], [IFLA.MTU, u32(l.mtu)]];
  if (l.address) attrs.push([IFLA.ADDRESS, l.address]);
  rtnl(nsPath, linkMessage(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, { flags: l.flags }, attrs));
}

/**
 * Make a veth pair in the namespace `nsPath` names: its end `name` (at index `ifindex` when
 * given, with that MTU and link-layer address) and its peer in the namespace the descriptor
 * `peer.nsFd` holds, named `peer.name` (absent: the kernel's vethN) at `peer.ifindex` (absent:
 * the kernel's choice). Both ends are made down.
 */
export function addVeth(nsPath: string, end: { name: string; ifindex?: number; mtu: number; address?: Buffer }, peer: { nsFd: number; name?: string; ifindex?: number }): void {
  const peerAttrs = [...(peer.name ? [nla(IFLA.IFNAME, Buffer.from(peer.name))] : []), nla(IFLA.NET_NS_FD, u32(peer.nsFd))];
  const info = Buffer.concat([
    nla(IFLA_INFO_KIND, Buffer.from('veth')),
    nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, Buffer.concat([ifinfo({ index: peer.ifindex ?? 0 }), ...peerAttrs]))),
  ]);
  const attrs: [number, Buffer][] = [[IFLA.IFNAME, Buffer.from(end.name)], [IFLA.MTU, u32(end.mtu)], [IFLA.LINKINFO, info]];
  if (end.address) attrs.push([IFLA.ADDRESS, end.address]);
  rtnl(nsPath, linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, { index: end.ifindex ?? 0 }, attrs));
}

/**
 * Make a macvlan on the device `lower` of this process's namespace, in the namespace the
 * descriptor `nsFd` holds, named `name` at index `ifindex` there, with its MTU, link-layer address,
 * macvlan mode and flags; made down.
 */
export function addMacvlan(l: { name: string; ifindex?: number; mtu: number; address?: Buffer; mode: number; flags?: number }, lower: string, nsFd: number): void {
  const low = netLinks('').find((x) => x.name === lower);
  if (!low) throw new CrtoolsError('NET_LINK', `there is no device ${lower} to hang macvlan ${l.name} on`, { exitCode: ExitCode.FAILED, context: { name: l.name, lower } });
  const u16 = Buffer.alloc(2);
  u16.writeUInt16LE(l.flags ?? 0);
  const data = Buffer.concat([nla(IFLA_MACVLAN.MODE, u32(l.mode)), ...(l.flags !== undefined ? [nla(IFLA_MACVLAN.FLAGS, u16)] : [])]);
  const attrs: [number, Buffer][] = [
    [IFLA.IFNAME, Buffer.from(l.name)], [IFLA.MTU, u32(l.mtu)], [IFLA.LINK, u32(low.ifindex)], [IFLA.NET_NS_FD, u32(nsFd)],
    [IFLA.LINKINFO, Buffer.concat([nla(IFLA_INFO_KIND, Buffer.from('macvlan')), nla(IFLA_INFO_DATA, data)])],
  ];
  if (l.address) attrs.push([IFLA.ADDRESS, l.address]);
  rtnl('', linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, { index: l.ifindex ?? 0 }, attrs));
}

/**
 * Make a bridge in the namespace `nsPath` names, `name` at index `ifindex`, with that MTU and,
 * when given, link-layer address; made down, with the kernel's default settings.
 */
export function addBridge(nsPath: string, l: { name: string; ifindex?: number; mtu: number; address?: Buffer }): void {
  const attrs: [number, Buffer][] = [[IFLA.IFNAME, Buffer.from(l.name)], [IFLA.MTU, u32(l.mtu)], [IFLA.LINKINFO, nla(IFLA_INFO_KIND, Buffer.from('bridge'))]];
  if (l.address) attrs.push([IFLA.ADDRESS, l.address]);
  rtnl(nsPath, linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, { index: l.ifindex ?? 0 }, attrs));
}

/**
 * IFLA_BR_* attributes that are the bridge's state or identity (its root and bridge ids, which
 * follow its address; ports, path costs, topology changes, timers), a flush command, padding,
 * the querier's state and the count of learned entries: not its settings.
 */
const BRIDGE_STATE = new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 40, 47, 48]);
/** the names `ip link` gives the settings, by IFLA_BR_* type */
const BRIDGE_SETTING: Record<number, string> = {
  1: 'forward_delay', 2: 'hello_time', 3: 'max_age', 4: 'ageing_time', 5: 'stp_state', 6: 'priority', 7: 'vlan_filtering',
  8: 'vlan_protocol', 9: 'group_fwd_mask', 20: 'group_address', 22: 'mcast_router', 23: 'mcast_snooping',
  24: 'mcast_query_use_ifaddr', 25: 'mcast_querier', 26: 'mcast_hash_elasticity', 27: 'mcast_hash_max',
  28: 'mcast_last_member_count', 29: 'mcast_startup_query_count', 30: 'mcast_last_member_interval',
  31: 'mcast_membership_interval', 32: 'mcast_querier_interval', 33: 'mcast_query_interval',
  34: 'mcast_query_response_interval', 35: 'mcast_startup_query_interval', 36: 'nf_call_iptables',
  37: 'nf_call_ip6tables', 38: 'nf_call_arptables', 39: 'vlan_default_pvid', 41: 'vlan_stats_enabled',
  42: 'mcast_stats_enabled', 43: 'mcast_igmp_version', 44: 'mcast_mld_version', 45: 'vlan_stats_per_port',
  46: 'multi_boolopt', 49: 'fdb_max_learned',
};

let newBridge: Map<number, Buffer> | undefined;

/**
 * The settings of a bridge (NetLink.bridge) that differ from those of a bridge just made (one is
 * made once, in a new network namespace, and read back): by the names `ip link` gives them.
 * Its state (ids, ports, timers, topology changes) is left out.
 */
export function bridgeSettingsChanged(bridge: ReadonlyMap<number, Buffer>): string[] {
  if (!newBridge) {
    const fd = createNetNamespace();
    try {
      const path = `/proc/${process.pid}/fd/${fd}`;
      addBridge(path, { name: 'crtools-br', mtu: 1500 });
      newBridge = netLinks(path).find((l) => l.name === 'crtools-br')?.bridge ?? new Map();
    } finally {
      closeSync(fd);
    }
  }
  const fresh = newBridge;
  return [...bridge.keys()].filter((t) => !BRIDGE_STATE.has(t) && !bridge.get(t)!.equals(fresh.get(t) ?? Buffer.alloc(0)))
    .sort((a, b) => a - b).map((t) => BRIDGE_SETTING[t] ?? `IFLA_BR attribute ${t}`);
}

/**
 * Put the link at `ifindex` of the namespace `nsPath` names under the master device at index
 * `master` (a bridge); its flags are left as they are.
 */
export function setLinkMaster(nsPath: string, ifindex: number, master: number): void {
  rtnl(nsPath, linkMessage(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, { index: ifindex }, [[IFLA.MASTER, u32(master)]]));
}

const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA = { NSID: 1, FD: 3 } as const;

/** An RTM_*NSID message: header, rtgenmsg (padded), attributes. */
function nsidMessage(type: number, flags: number, attrs: [number, Buffer][]): Buffer {
  const msg = Buffer.concat([Buffer.alloc(16), Buffer.alloc(4), ...attrs.map(([t, v]) => nla(t, v))]);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(type, 4);
  msg.writeUInt16LE(flags, 6);
  msg.writeUInt32LE(1, 8);
  return msg;
}

/**
 * The id the network namespace `nsPath` names knows the namespace the descriptor `otherFd` holds
 * by (RTM_GETNSID: what its devices' IFLA_LINK_NETNSID say of a peer there); undefined when it
 * has given it none.
 */
export function netnsIdOf(nsPath: string, otherFd: number): number | undefined {
  const r = rtnl(nsPath, nsidMessage(RTM_GETNSID, NLM_F_REQUEST, [[NETNSA.FD, u32(otherFd)]]));
  const m = r.find((x) => x.readUInt16LE(4) === RTM_NEWNSID);
  const id = m ? attributes(m, 20).get(NETNSA.NSID)?.readInt32LE(0) : undefined;
  return id === undefined || id < 0 ? undefined : id;
}

/**
 * Have the network namespace `nsPath` names know the namespace the descriptor `otherFd` holds by
 * the id `nsid` (RTM_NEWNSID); one it already knows by that id is left as it is, by another is
 * an error (EEXIST).
 */
export function setNetnsId(nsPath: string, otherFd: number, nsid: number): void {
  if (netnsIdOf(nsPath, otherFd) === nsid) return;
  const v = Buffer.alloc(4);
  v.writeInt32LE(nsid);
  rtnl(nsPath, nsidMessage(RTM_NEWNSID, NLM_F_REQUEST | NLM_F_ACK, [[NETNSA.FD, u32(otherFd)], [NETNSA.NSID, v]]));
}

/**
 * Move the device `from` of this process's namespace into the namespace the descriptor `nsFd`
 * holds, renamed `to.name` and at index `to.ifindex` there (IFLA_NEW_IFINDEX, Linux 5.11), down:
 * a device the caller made beforehand for the tree (CRIU's `--external netdev[IN]:OUT`).
 */
export function moveLink(from: string, nsFd: number, to: { name: string; ifindex: number }): void {
  const l = netLinks('').find((x) => x.name === from);
  if (!l) throw new CrtoolsError('NET_LINK', `there is no device ${from} to move into the tree's network namespace as ${to.name}`, { exitCode: ExitCode.FAILED, context: { name: to.name, from } });
  const attrs: [number, Buffer][] = [[IFLA.IFNAME, Buffer.from(to.name)], [IFLA.NET_NS_FD, u32(nsFd)]];
  if (to.ifindex) attrs.push([IFLA.NEW_IFINDEX, u32(to.ifindex)]);
  rtnl('', linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, { index: l.ifindex }, attrs));
}

/**
 * Put the link `name` of the namespace `nsPath` names under the master device `master` (a
 * bridge: `ip link set NAME master MASTER`) and bring it up.
 */
export function enslaveLink(nsPath: string, name: string, master: string): void {
  const m = netLinks(nsPath).find((l) => l.name === master);
  if (!m) throw new CrtoolsError('NET_LINK', `there is no device ${master} to put ${name} in`, { exitCode: ExitCode.FAILED, context: { name, master } });
  rtnl(nsPath, linkMessage(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, { flags: IFF_UP, change: IFF_UP }, [[IFLA.IFNAME, Buffer.from(name)], [IFLA.MASTER, u32(m.ifindex)]]));
}

const legacyTools = new Map<string, string | undefined>();

/**
 * The iptables tool (iptables-save, iptables-restore, ip6tables-save, ip6tables-restore) of the
 * legacy (x_tables) backend, as CRIU built with libnftables picks it: the tool itself when it is
 * the legacy one, else its `-legacy-` form (Debian: iptables-legacy-save...) when installed;
 * undefined when there is none (the nft backend's tables are in nft's ruleset instead).
 */
export function legacyXtablesTool(tool: 'iptables-save' | 'iptables-restore' | 'ip6tables-save' | 'ip6tables-restore'): string | undefined {
  if (legacyTools.has(tool)) return legacyTools.get(tool);
  const version = (t: string) => {
    const r = process.getBuiltinModule('node:child_process').spawnSync(t, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return r.error || r.status !== 0 ? undefined : r.stdout;
  };
  const legacy = tool.replace(/-(save|restore)$/, '-legacy-$1');
  const own = version(tool);
  const found = own !== undefined && !own.includes('nf_tables') ? tool : version(legacy)?.includes('legacy') ? legacy : undefined;
  legacyTools.set(tool, found);
  return found;
}

/**
 * Run a network tool (ip, iptables-save, nft...) inside the network namespace `nsPath` names
 * (through util-linux's nsenter, as CRIU runs them inside with its own setns), `input` on its
 * standard input; its standard output. A tool that is missing or fails is one clear error
 * (NET_TOOL, exit 1) unless `canFail`, when its failure is null.
 */
export function netnsTool(nsPath: string, argv: readonly string[], opts: { input?: Buffer | string; canFail?: boolean } = {}): Buffer | null {
  // (the input from a file: `ip ... restore` seeks in it, as CRIU gives it a temporary file)
  let stdin: number | 'pipe' = 'pipe';
  let tmp: string | undefined;
  if (opts.input !== undefined) {
    tmp = mkdtempSync(join(tmpdir(), 'crtools-net-'));
    writeFileSync(join(tmp, 'input'), opts.input);
    stdin = openSync(join(tmp, 'input'), 'r');
  }
  let r;
  try {
    r = process.getBuiltinModule('node:child_process').spawnSync('nsenter', [`--net=${nsPath}`, '--', ...argv], { stdio: [stdin, 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  } finally {
    if (typeof stdin === 'number') closeSync(stdin);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  const tool = argv[0]!;
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new CrtoolsError('NET_TOOL', `${code === 'ENOENT' ? 'nsenter (util-linux) is not installed' : `nsenter could not be run (${code})`}: it runs ${tool} inside the tree's network namespace`, { exitCode: ExitCode.FAILED, context: { tool } });
  }
  if (r.status !== 0) {
    if (opts.canFail) return null;
    // (its first error line: nft warns before it complains)
    const lines = r.stderr.toString().trim().split('\n');
    const err = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
    const missing = r.status === 127 || /No such file|failed to execute/.test(err);
    throw new CrtoolsError('NET_TOOL', missing ? `${tool} is not installed (it is run inside the tree's network namespace)` : `${argv.join(' ')} inside the tree's network namespace failed${err ? `: ${err}` : ` (exit ${r.status})`}`, {
      exitCode: ExitCode.FAILED, context: { tool },
    });
  }
  return r.stdout;
}
