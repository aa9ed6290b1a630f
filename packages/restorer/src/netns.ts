/**
 * The network namespace of a restored tree, made before its root (which is born inside it, and
 * in which the TCP connections are made in repair mode), in CRIU 4.2's order: the namespace's
 * sysctls ("all", then "default", unix, ipv4), each link set (loopback: flags and MTU) with its
 * own sysctls, then `ip addr restore`, `ip route restore` (IPv4, IPv6), the default rules flushed
 * and `ip rule restore`, `iptables-restore -w` and `ip6tables-restore -w`, each run inside it.
 */
import { closeSync, readlinkSync } from 'node:fs';
import { NET_CONF4, NET_CONF6, NET_IPV4_SYSCTLS, NET_UNIX_CONF, netConfPath } from '@crtools/procfs';
import { createNetNamespace, namespaceFilesAt, netnsTool, setLink } from '@crtools/sys';
import { silentLogger, type Logger } from '@crtools/common';
import type { NamespacePlan, NetPlan } from './plan.js';

export interface MadeNetNamespace {
  fd: number;
  /** /proc/PID/fd/N of the descriptor (PID this process, so that other processes can open it too) */
  path: string;
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
 * The tables as iptables-save printed them, without the network lock a CRIU dump saves with
 * them (chain CRIU, jumped to from INPUT and OUTPUT: CRIU restores it and deletes it once the
 * tasks are back). The namespace is new: nothing reaches it from outside, and the connections
 * made in it are locked one by one as the dump locked them (src/tcp.ts), which takes the rules
 * away again (a chain of CRIU's restored here would be left to a tool that does not know it).
 */
function withoutLock(saved: Buffer | undefined): Buffer | undefined {
  if (!saved) return saved;
  const lines = saved.toString('utf8').split('\n');
  const kept = lines.filter((l) => !/^:CRIU /.test(l) && !/^-A (INPUT|OUTPUT) -j CRIU$/.test(l) && !/^-A CRIU /.test(l));
  return kept.length === lines.length ? saved : Buffer.from(kept.join('\n'));
}

/** Make the namespace; a failure closes it and throws. */
export function makeNetNamespace(net: NetPlan, log: Logger = silentLogger): MadeNetNamespace {
  const fd = createNetNamespace();
  const path = `/proc/${process.pid}/fd/${fd}`;
  try {
    const write = (writes: [string, string][]) => {
      if (writes.length) namespaceFilesAt(path, 'net', { writes });
    };
    write([...confWrites('ipv4', 'all', net.all4, NET_CONF4), ...confWrites('ipv4', 'default', net.def4, NET_CONF4)]);
    write([...confWrites('ipv6', 'all', net.all6, NET_CONF6), ...confWrites('ipv6', 'default', net.def6, NET_CONF6)]);
    write(NET_UNIX_CONF.flatMap((f, i) => (net.unix[i] == null ? [] : [[f, net.unix[i]!] as [string, string]])));
    write(NET_IPV4_SYSCTLS.flatMap((f, i) => (net.ipv4[i] == null ? [] : [[f, net.ipv4[i]!] as [string, string]])));
    for (const l of net.links) {
      setLink(path, { name: l.name, flags: l.flags, mtu: l.mtu });
      write(confWrites('ipv4', l.name, l.conf4, NET_CONF4));
      write(confWrites('ipv6', l.name, l.conf6, NET_CONF6));
    }
    const feed = (argv: string[], data: Buffer | undefined) => {
      if (data?.length) netnsTool(path, argv, { input: data });
    };
    feed(['ip', 'addr', 'restore'], net.raw.ifaddr);
    feed(['ip', 'route', 'restore'], net.raw.route);
    feed(['ip', 'route', 'restore'], net.raw.route6);
    if (net.raw.rule?.length) {
      // the namespace's three default rules go first, or they would be there twice
      netnsTool(path, ['ip', 'rule', 'flush']);
      netnsTool(path, ['ip', 'rule', 'delete', 'table', 'local']);
      feed(['ip', 'rule', 'restore'], net.raw.rule);
    }
    feed(['iptables-restore', '-w'], withoutLock(net.raw.iptables));
    feed(['ip6tables-restore', '-w'], withoutLock(net.raw.ip6tables));
    log.info(`net: network namespace ${net.id} made (${net.links.map((l) => l.name).join(', ')})`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { fd, path, close: () => closeSync(fd) };
}

/**
 * The root's network namespace, when it has one of its own: made as dumped, or empty (--empty-ns
 * net: not dumped, its caller configures it, as runc does), or the caller's (dumped as external:
 * the inherited descriptor); undefined when it has none.
 */
export function treeNetNamespace(ns: NamespacePlan | undefined, log: Logger = silentLogger): MadeNetNamespace | undefined {
  if (ns?.net) return makeNetNamespace(ns.net, log);
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
  const fd = createNetNamespace();
  log.info('net: an empty network namespace made (--empty-ns net)');
  return { fd, path: `/proc/${process.pid}/fd/${fd}`, close: () => closeSync(fd) };
}
