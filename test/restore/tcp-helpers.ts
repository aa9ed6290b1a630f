/**
 * What the TCP round trips share: ports nobody uses, the network lock's iptables rules for
 * them, the processes started outside the tree, the fingerprint fields a TCP connection moves,
 * and the CRIU 4+ binary the interop tests take from $CRIU.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { workloadBinDir } from '../lib/paths.js';
import { criu, killTree, readState, sleep, tmp, waitReaped, waitVerdict } from '../dump/helpers.js';

/** processes started outside the tree under test (peers, clients), killed by pid after each test */
export const outside: number[] = [];

export const haveIptables = spawnSync('iptables', ['-w', '-S'], { stdio: 'ignore' }).status === 0;

/** TCP ports in use on this machine (any state, both families). */
function portsInUse(): Set<number> {
  const used = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const l of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const m = /^\s*\d+: [0-9A-F]+:([0-9A-F]{4}) /.exec(l);
      if (m) used.add(parseInt(m[1]!, 16));
    }
  }
  return used;
}

/** n distinct ports nobody uses now. */
export function freePorts(n: number): number[] {
  const used = portsInUse();
  const out: number[] = [];
  while (out.length < n) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    if (!used.has(p) && !out.includes(p)) out.push(p);
  }
  ports.push(...out);
  return out;
}

/** ports the test under way uses: the lock rules it looks at and removes (after a failure) are theirs */
export const ports: number[] = [];

/** The iptables/ip6tables rules of the network lock now in place for this test's ports, by tool. */
export function lockRulesBy(): [string, string][] {
  const out: [string, string][] = [];
  for (const t of ['iptables', 'ip6tables']) {
    const r = spawnSync(t, ['-w', '-S'], { encoding: 'utf8' });
    for (const l of (r.stdout ?? '').split('\n')) {
      if (l.includes('--mark 0xc114') && l.includes('DROP') && ports.some((p) => l.includes(`--sport ${p} `) || l.includes(`--dport ${p} `))) out.push([t, l]);
    }
  }
  return out;
}

export function lockRules(): string[] {
  return lockRulesBy().map(([, l]) => l);
}

/**
 * What differs between a socket the kernel accepted and the one the restore makes in repair
 * mode, with nothing to do with the connection: the multicast TTL/hop limit an accepted socket
 * takes from the peer's SYN (meaningless for TCP; CRIU does not keep it either).
 */
export const TCP_MOVING = [
  { path: /\.sockopts\.(IP_MULTICAST_TTL|IPV6_MULTICAST_HOPS)$/, why: "an accepted socket takes its multicast TTL / hop limit from the peer's SYN; a socket made again has the default (meaningless for TCP, not in CRIU's format)" },
  { path: /\.sockopts\.(TCP_MAXSEG|TCP_WINDOW_CLAMP)$/, why: "the segment size and window clamp the kernel works out for a connection as it runs (bounded by half the peer's largest window, grown by receive autotuning); a connection made again in repair mode starts them afresh (neither is in CRIU's format)" },
  { path: /\.sockopts\.IPV6_V6ONLY$/, why: 'an IPv6 socket bound to its address by the restore gets IPV6_V6ONLY from the kernel (as under CRIU); the original was bound by connect() and kept 0; an established connection does the same either way' },
  { path: /\.fcntl\.(FIONREAD|SIOCOUTQ)$/, why: "a connection goes on once restored: bytes leave one end's send queue for the other end's receive queue (the workload checks that every one arrives, in order)" },
];

// a real CRIU 4+ (crtools' own criu also says "Version: 4.2", with a "crtools:" line after it)
export const CRIU = [process.env.CRIU].find((c) => {
  const v = c ? (spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout ?? '') : '';
  return /Version: ([4-9]|\d\d)\./.test(v) && !/^crtools:/m.test(v);
});


/** After each TCP test: what it started outside the tree killed by pid, the lock rules a failure left lifted. */
export function cleanupTcp(): void {
  for (const p of outside.splice(0)) killTree(p);
  // a test that failed between a dump and its restore leaves its lock: lifted here
  for (const [t, l] of lockRulesBy()) spawnSync(t, ['-w', ...l.replace(/^-A /, '-D ').split(' ')], { stdio: 'ignore' });
  ports.splice(0);
}

/** Start a workload's peer outside the tree (`NAME ...args STATE`); it says `pid=N` once listening. */
export function startPeerOf(name: string, args: string[], prefix: string[] = []): { pid: number; state: string } {
  const state = path.join(tmp(`${name}-peer`), 'peer.state');
  const argv = [...prefix, path.join(workloadBinDir, name), ...args, state];
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${name} peer did not start`);
  let line = '';
  for (let i = 0; i < 500 && !/pid=\d+/.test(line); i++) {
    sleep(10);
    line = readState(state);
  }
  const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
  if (!pid) throw new Error(`${name} peer: '${line}'`);
  outside.push(pid);
  return { pid, state };
}

/** Both verdicts of a check: the tree's and the outside peer's. */
export function bothVerdicts(treePid: number, treeState: string, peer: { pid: number; state: string }, timeoutMs = 60_000): [string, string] {
  writeFileSync(treeState, '');
  writeFileSync(peer.state, '');
  process.kill(peer.pid, 'SIGUSR1');
  process.kill(treePid, 'SIGUSR1');
  // (a peer that backed off while the connection was locked retransmits on its own timer: a lag of seconds)
  return [waitVerdict(treeState, timeoutMs), waitVerdict(peer.state, timeoutMs)];
}

/** CRIU 4+ dumps the tree with --tcp-established into dir (the tree is gone after). */
export function criuDumpTcp(pid: number, dir: string): void {
  const d = spawnSync(CRIU!, ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '--tcp-established'], { encoding: 'utf8', timeout: 60_000 });
  expect(d.status, readState(path.join(dir, 'dump.log')).split('\n').slice(-5).join('\n')).toBe(0);
  expect(waitReaped(pid)).toBe(true);
}

/** crtools dumps the tree with --tcp-established, then CRIU 4+ restores it; the lock is lifted. */
export function ourDumpCriuRestoreTcp(pid: number, dir: string): void {
  const d = criu(['dump', '-t', String(pid), '-D', dir, '--tcp-established']);
  expect(d.code, d.stderr).toBe(0);
  expect(waitReaped(pid)).toBe(true);
  const r = spawnSync(CRIU!, ['restore', '-D', dir, '-d', '-o', 'restore.log', '--tcp-established'], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, readState(path.join(dir, 'restore.log')).split('\n').slice(-5).join('\n')).toBe(0);
  expect(lockRules()).toEqual([]);
}

/**
 * A client outside the tree that talks over one TCP connection and writes "<its own port>
 * <counter>" to `out` after each answer (redis-server's, PostgreSQL's tests): `now()` reads it,
 * `goesOn()` checks that within a second the counter moved on over the connection it started with.
 */
export function outsideClient(out: string): { now: () => { port: number; n: number } | undefined; goesOn: () => void; ready: (min: number) => boolean } {
  let first: number | undefined;
  const now = (): { port: number; n: number } | undefined => {
    const m = /^(\d+) (\d+)$/.exec(readState(out));
    return m ? { port: Number(m[1]), n: Number(m[2]) } : undefined;
  };
  return {
    now,
    ready: (min) => {
      const c = now();
      first ??= c?.port;
      return (c?.n ?? 0) > min;
    },
    goesOn: () => {
      const a = now();
      expect(a, readState(out)).toBeDefined();
      sleep(1000);
      const b = now();
      // the same connection (the client's own port), the counter on from where it was
      expect(b?.port, readState(out)).toBe(first);
      expect(b!.n).toBeGreaterThan(a!.n);
    },
  };
}
