/**
 * The network lock of a tree in the host's network namespace (CRIU's --network-lock): while a
 * dumped TCP connection has no socket that answers (from the moment it is put in repair mode
 * until its restored socket leaves it), netfilter rules drop its packets both ways, so the peer
 * retransmits into a lag instead of receiving a reset. Packets marked NETWORK_LOCK_MARK pass.
 *
 * - iptables: two rules a connection (INPUT and OUTPUT, `-I`), the form CRIU 4.2 gives them, so
 *   that either tool's restore deletes the other's (`-D`);
 * - nftables: one table `inet CRIU-<run id>` with a set of connections each way, made at the
 *   first connection and deleted whole (the run id is kept in inventory.img);
 * - skip: nothing (the caller keeps the peers quiet).
 *
 * A tree with a network namespace of its own has the whole namespace locked instead, as CRIU 4.2
 * locks it (`lockNamespace`): everything in it but packets marked NETWORK_LOCK_MARK is dropped
 * both ways (iptables: chain CRIU jumped to from INPUT and OUTPUT, for IPv4 and IPv6; nftables:
 * table `inet CRIU-<run id>` whose input and output chains drop by policy), and its connections
 * get no rules of their own. A namespace that outlives the tree (`ip netns add`, a container's
 * bound one) stays so after the dump until a restore lifts it (`unlockNamespace`).
 */
import { CrtoolsError, ExitCode, type Logger } from '@crtools/common';
import { AF, NETWORK_LOCK_MARK, NETWORK_LOCK_METHOD } from '@crtools/images/facts';

export type NetworkLockMethod = 'iptables' | 'nftables' | 'skip';

/** One connection as inet_sk_entry keeps it: addresses as raw 32-bit words, ports in host order. */
export interface LockedConnection {
  family: number;
  src: readonly number[];
  sport: number;
  dst: readonly number[];
  dport: number;
}

/** inventory_entry.network_lock_method of a method, and back (absent: iptables, as CRIU). */
export function networkLockImageValue(m: NetworkLockMethod): number {
  return m === 'iptables' ? NETWORK_LOCK_METHOD.IPTABLES : m === 'nftables' ? NETWORK_LOCK_METHOD.NFTABLES : NETWORK_LOCK_METHOD.SKIP;
}

export function networkLockFromImage(v: number | undefined): NetworkLockMethod {
  if (v === undefined || v === NETWORK_LOCK_METHOD.IPTABLES) return 'iptables';
  if (v === NETWORK_LOCK_METHOD.NFTABLES) return 'nftables';
  if (v === NETWORK_LOCK_METHOD.SKIP) return 'skip';
  throw new CrtoolsError('RESTORE_BAD_IMAGE', `inventory.img: network lock method ${v} is none CRIU 4.2 knows`, { exitCode: ExitCode.BAD_INPUT });
}

/** `--network-lock` as given on a command line or in criu_opts (IPTABLES/NFTABLES/SKIP). */
export function parseNetworkLock(v: string): NetworkLockMethod {
  const m = v.toLowerCase();
  if (m === 'iptables' || m === 'nftables' || m === 'skip') return m;
  throw new CrtoolsError('USAGE', `invalid argument for --network-lock: ${v} (iptables, nftables or skip)`, { exitCode: ExitCode.USAGE });
}

/** A word list as an address: an IPv4-mapped IPv6 address is locked as the IPv4 one (as CRIU). */
function addressOf(family: number, words: readonly number[]): { v4: boolean; text: string } {
  const b = Buffer.alloc(16);
  words.slice(0, 4).forEach((w, i) => b.writeUInt32LE(w >>> 0, 4 * i));
  const mapped = family === AF.INET6 && b.readUInt32BE(8) === 0xffff && b.readUInt32BE(0) === 0 && b.readUInt32BE(4) === 0;
  if (family === AF.INET || mapped) {
    const o = family === AF.INET ? 0 : 12;
    return { v4: true, text: [0, 1, 2, 3].map((i) => b[o + i]).join('.') };
  }
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => b.readUInt16BE(2 * i).toString(16));
  return { v4: false, text: groups.join(':') };
}

/**
 * A network namespace's saved tables without a network lock (CRIU's or crtools', taken on the
 * namespace by a dump): iptables-save's text without chain CRIU and the rules jumping to it, or
 * nft's (`nft list ruleset`/`table`) without a table `inet CRIU-<run id>` and the iptables lock
 * as nft lists it (chain CRIU of table ip/ip6 filter, the rules jumping to it; the INPUT and
 * OUTPUT chains stay, as a CRIU restore leaves them once it unlocks). A restore takes the lock of
 * a new namespace its own way (its connections one by one), so a lock in the images would be
 * left to a tool that does not know it.
 */
export function withoutLockRules(saved: Buffer, format: 'iptables' | 'nft'): Buffer {
  const lines = saved.toString('utf8').split('\n');
  if (format === 'iptables') {
    const kept = lines.filter((l) => !/^:CRIU /.test(l) && !/^-A (INPUT|OUTPUT) -j CRIU$/.test(l) && !/^-A CRIU /.test(l));
    return kept.length === lines.length ? saved : Buffer.from(kept.join('\n'));
  }
  const out: string[] = [];
  let skip: string | undefined;
  for (const l of lines) {
    if (skip !== undefined) {
      if (l === skip) skip = undefined;
      continue;
    }
    if (/^table inet CRIU-[0-9a-f-]+ \{/.test(l)) skip = '}';
    else if (/^\tchain CRIU \{/.test(l)) skip = '\t}';
    else if (!/^\t\t.*\bjump CRIU$/.test(l)) out.push(l);
  }
  if (out.length === lines.length) return saved;
  // (the empty line a chain left out leaves at the top of its table)
  return Buffer.from(out.join('\n').replace(/\{\n\n/g, '{\n'));
}

/** The command line of `tool args`, run inside the network namespace `netns` names when given. */
function toolArgv(netns: string | undefined, tool: string, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netns}`, '--', tool, ...args]] : [tool, args];
}

/**
 * Run a netfilter tool (inside the network namespace `netns` names, when given); its absence or
 * failure is one clear error (exit 1). Never a hang: iptables waits at most 30 s for the xtables
 * lock (`-w 30`), and a tool still running after 60 s is killed.
 */
function run(netns: string | undefined, tool: string, args: string[], input?: string): void {
  const [cmd, argv] = toolArgv(netns, tool, args);
  const r = process.getBuiltinModule('node:child_process').spawnSync(cmd, argv, { input, encoding: 'utf8', stdio: ['pipe', 'ignore', 'pipe'], timeout: 60_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ETIMEDOUT' ? `${tool} ${args.join(' ')} did not finish in 60 s` : code === 'ENOENT' ? `${tool} is not installed (Debian package ${tool.startsWith('ip') ? 'iptables' : 'nftables'})` : `${tool} could not be run (${code})`;
    throw new CrtoolsError('NETWORK_LOCK', `network lock: ${why}`, { exitCode: ExitCode.FAILED, context: { tool } });
  }
  if (r.status !== 0) {
    const err = (r.stderr ?? '').trim().split('\n')[0] ?? '';
    throw new CrtoolsError('NETWORK_LOCK', `network lock: ${tool} ${args.join(' ')} failed${err ? `: ${err}` : ` (exit ${r.status})`}`, { exitCode: ExitCode.FAILED, context: { tool } });
  }
}

/** True when the tool exits 0 (a probe: its absence or failure is false). */
function succeeds(netns: string | undefined, tool: string, args: string[]): boolean {
  const [cmd, argv] = toolArgv(netns, tool, args);
  const r = process.getBuiltinModule('node:child_process').spawnSync(cmd, argv, { stdio: 'ignore', timeout: 60_000 });
  return !r.error && r.status === 0;
}

/** IPv6 is there (CRIU's kdat.ipv6): ip6tables gets the namespace's lock too. */
function hasIpv6(): boolean {
  return process.getBuiltinModule('node:fs').existsSync('/proc/sys/net/ipv6');
}

export class NetworkLock {
  private tableMade = false;
  /** the whole namespace is locked (lockNamespace): connections get no lock of their own */
  private whole = false;
  /**
   * the network namespace the connections live in (/proc/PID/ns/net...), when not this
   * process's: the rules are made and deleted in there (as CRIU locks a tree's own namespace)
   */
  netns?: string;

  /** runId: names the nftables table (`inet CRIU-<runId>`); the dump's, kept in inventory.img */
  constructor(readonly method: NetworkLockMethod, readonly runId: string, private readonly log?: Logger) {}

  get table(): string {
    return `inet CRIU-${this.runId}`;
  }

  /**
   * The lock of the connections of another network namespace (`netns`: /proc/PID/ns/net...):
   * this one's method and run, its rules made and deleted in there (a nested namespace of the
   * tree's, whose connections are locked where they live).
   */
  inNamespace(netns: string): NetworkLock {
    const l = new NetworkLock(this.method, this.runId, this.log);
    l.netns = netns;
    return l;
  }

  /**
   * Lock the whole namespace `netns` names (a tree's own), CRIU 4.2's form of each method; the
   * connections then get no rules of their own. Skip: nothing.
   */
  lockNamespace(): void {
    if (this.method === 'skip') return;
    const mark = `0x${NETWORK_LOCK_MARK.toString(16).toUpperCase()}`;
    if (this.method === 'iptables') {
      const conf = `*filter\n:CRIU - [0:0]\n-I INPUT -j CRIU\n-I OUTPUT -j CRIU\n-A CRIU -m mark --mark ${mark} -j ACCEPT\n-A CRIU -j DROP\nCOMMIT\n`;
      run(this.netns, 'iptables-restore', ['--wait=30', '--noflush'], conf);
      if (hasIpv6()) {
        try {
          run(this.netns, 'ip6tables-restore', ['--wait=30', '--noflush'], conf);
        } catch (e) {
          this.quietly(() => this.iptablesUnlockNamespace(false));
          throw e;
        }
      }
    } else {
      const t = this.table;
      run(this.netns, 'nft', ['-f', '-'], [
        `create table ${t}`,
        `add chain ${t} output { type filter hook output priority 0; policy drop; }`,
        `add rule ${t} output meta mark ${mark} accept`,
        `add chain ${t} input { type filter hook input priority 0; policy drop; }`,
        `add rule ${t} input meta mark ${mark} accept`,
        '',
      ].join('\n'));
    }
    this.whole = true;
    this.log?.info(`network lock (${this.method}): the tree's network namespace locked`);
  }

  /** Lift the namespace's lock (as CRIU 4.2: the jumps to chain CRIU deleted while any is left, then the chain; or the table). */
  unlockNamespace(): void {
    if (this.method === 'iptables') {
      this.iptablesUnlockNamespace(true);
      if (hasIpv6()) this.iptablesUnlockNamespace(false);
    } else if (this.method === 'nftables') {
      run(this.netns, 'nft', ['delete', 'table', ...this.table.split(' ')]);
    }
    this.whole = false;
    this.log?.info(`network lock (${this.method}): the network namespace unlocked`);
  }

  /**
   * The namespace holds a lock of this method as lockNamespace() makes it (a dump's, not lifted
   * since): chain CRIU for iptables, the run's table for nftables; skip: never.
   */
  namespaceLocked(): boolean {
    if (this.method === 'iptables') return succeeds(this.netns, 'iptables', ['-w', '30', '-S', 'CRIU']) || (hasIpv6() && succeeds(this.netns, 'ip6tables', ['-w', '30', '-S', 'CRIU']));
    if (this.method === 'nftables') return succeeds(this.netns, 'nft', ['list', 'table', ...this.table.split(' ')]);
    return false;
  }

  /** The namespace is locked whole by an earlier run (a dump's lock found by namespaceLocked()): connections get no rules of their own; unlockNamespace() lifts it. */
  adoptNamespaceLock(): void {
    this.whole = true;
  }

  private iptablesUnlockNamespace(v4: boolean): void {
    const [tool, restore] = v4 ? ['iptables', 'iptables-restore'] : ['ip6tables', 'ip6tables-restore'];
    // (a jump made twice, or by iptables-nft beside legacy: each one goes before the chain can)
    for (let i = 0; i < 8 && succeeds(this.netns, tool, ['-w', '30', '-C', 'INPUT', '-j', 'CRIU']); i++) {
      run(this.netns, restore, ['--wait=30', '--noflush'], '*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\nCOMMIT\n');
    }
    run(this.netns, restore, ['--wait=30', '--noflush'], '*filter\n:CRIU - [0:0]\n-X CRIU\nCOMMIT\n');
  }

  /** Drop the connection's packets both ways (before its socket goes into repair mode). */
  lock(c: LockedConnection): void {
    if (this.whole) return;
    if (this.method === 'iptables') {
      this.iptables(c, '-I', true);
      try {
        this.iptables(c, '-I', false);
      } catch (e) {
        this.quietly(() => this.iptables(c, '-D', true));
        throw e;
      }
    } else if (this.method === 'nftables') {
      if (!this.tableMade) this.makeTable();
      const s = addressOf(c.family, c.src);
      const d = addressOf(c.family, c.dst);
      const set = s.v4 ? 'conns4' : 'conns6';
      run(this.netns, 'nft', ['-f', '-'], `add element ${this.table} ${set} { ${d.text} . ${c.dport} . ${s.text} . ${c.sport} }\nadd element ${this.table} ${set} { ${s.text} . ${c.sport} . ${d.text} . ${c.dport} }\n`);
    }
    this.log?.debug(`network lock (${this.method}): locked ${this.describe(c)}`);
  }

  /** Let the connection's packets through again (iptables: its two rules go; nftables: see release). */
  unlock(c: LockedConnection): void {
    if (this.method !== 'iptables' || this.whole) return;
    let first: unknown;
    for (const input of [true, false]) {
      try {
        this.iptables(c, '-D', input);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
    this.log?.debug(`network lock (${this.method}): unlocked ${this.describe(c)}`);
  }

  /** The end of the lock as a whole: the nftables table goes (with every connection in it). */
  release(): void {
    if (this.method !== 'nftables' || this.whole) return;
    run(this.netns, 'nft', ['delete', 'table', ...this.table.split(' ')]);
    this.tableMade = false;
  }

  /** Unlock, reporting a failure to the log rather than throwing (a path that goes on). */
  quietly(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log?.warn('net', e instanceof Error ? e.message : String(e));
    }
  }

  describe(c: LockedConnection): string {
    const s = addressOf(c.family, c.src);
    const d = addressOf(c.family, c.dst);
    return `${s.text}:${c.sport} - ${d.text}:${c.dport}`;
  }

  private makeTable(): void {
    const t = this.table;
    const mark = `0x${NETWORK_LOCK_MARK.toString(16)}`;
    run(this.netns, 'nft', ['-f', '-'], [
      `add table ${t}`,
      `add chain ${t} output { type filter hook output priority 0; }`,
      `add rule ${t} output meta mark ${mark} accept`,
      `add chain ${t} input { type filter hook input priority 0; }`,
      `add rule ${t} input meta mark ${mark} accept`,
      `add set ${t} conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }`,
      `add rule ${t} output ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop`,
      `add rule ${t} input ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop`,
      `add set ${t} conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }`,
      `add rule ${t} output ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop`,
      `add rule ${t} input ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop`,
      '',
    ].join('\n'));
    this.tableMade = true;
  }

  /** One of a connection's two iptables rules: packets coming in (input) or going out. */
  private iptables(c: LockedConnection, op: '-I' | '-D', input: boolean): void {
    const s = addressOf(c.family, c.src);
    const d = addressOf(c.family, c.dst);
    const [from, fromPort, to, toPort] = input ? [d.text, c.dport, s.text, c.sport] : [s.text, c.sport, d.text, c.dport];
    run(this.netns, s.v4 ? 'iptables' : 'ip6tables', [
      '-w', '30', '-t', 'filter', op, input ? 'INPUT' : 'OUTPUT', '--protocol', 'tcp', '-m', 'mark', '!', '--mark', `0x${NETWORK_LOCK_MARK.toString(16).toUpperCase()}`,
      '--source', from, '--sport', String(fromPort), '--destination', to, '--dport', String(toPort), '-j', 'DROP',
    ]);
  }
}
