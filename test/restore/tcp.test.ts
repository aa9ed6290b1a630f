/**
 * Established TCP connections (--tcp-established): dumped through TCP_REPAIR behind the network
 * lock and made again in repair mode. A C workload with connections inside the tree over
 * loopback IPv4, IPv6 and v4-mapped IPv6 and one to a peer outside, queues full both ways, every
 * byte checked in order after each restore; redis-server with a client outside the tree that goes
 * on INCRementing over the same connection; a python3 client/server pair in the tree; refusals by
 * name; CRIU 4.2 both ways.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { CRIU, TCP_MOVING, bothVerdicts, cleanupTcp, criuDumpTcp, freePorts, haveIptables, lockRules, ourDumpCriuRestoreTcp, outside, outsideClient, startPeerOf } from './tcp-helpers.js';
import { alive, criu, critDecode, haveCrit, killAllStarted, killTree, readState, sleep, startWorkload, tmp, treePids, waitReaped, waitVerdict } from '../dump/helpers.js';

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});

/** Start the outside peer of tcpconn (it says ready only once the tree has connected). */
function startPeer(port: number): { pid: number; state: string } {
  return startPeerOf('tcpconn', ['peer', String(port)]);
}

describe('TCP connections (--tcp-established)', () => {
  it.skipIf(!haveIptables)('tcpconn: IPv4, IPv6 and v4-mapped connections in the tree and one to a peer outside, queues full both ways, round-tripped twice; every byte arrives in order', () => {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    let k = 0;
    roundTrip('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)], (pid, state) => {
      k++;
      // the lock is lifted once the tasks run
      expect(lockRules()).toEqual([]);
      expect(bothVerdicts(pid, state, peer)).toEqual([`check ok k=${k}`, `check ok k=${k}`]);
    }, true, () => waitVerdict(peer.state, 100).startsWith('ready') || readState(peer.state).startsWith('ready'), TCP_MOVING, (dir) => {
      // the tree is gone, its 7 connections still locked both ways (2 rules each) for the restore
      expect(lockRules().length).toBe(14);
      const streams = readdirSync(dir).filter((n) => /^tcp-stream-[0-9a-f]+\.img$/.test(n));
      expect(streams.length).toBe(7);
      if (haveCrit) {
        const e = (critDecode(path.join(dir, streams[0]!)) as { entries: Record<string, unknown>[] }).entries[0]!;
        expect(Number(e['inq_len']) + Number(e['outq_len'])).toBeGreaterThan(0);
        const files = (critDecode(path.join(dir, 'files.img')) as { entries: { isk?: { state: unknown } }[] }).entries;
        expect(files.filter((f) => f.isk && (f.isk.state === 1 || f.isk.state === 'ESTABLISHED')).length).toBe(7);
      }
    }, ['--tcp-established'], ['--tcp-established']);
  });

  it('an established connection is refused by name without --tcp-established, and --check-only lists it; the tree runs on', () => {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('tcp-refused')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`^criu: task ${w.pid} fd \\d+ \\(socket:\\[\\d+\\]\\): TCP connection 127\\.0\\.0\\.1:${p4} -> 127\\.0\\.0\\.1:\\d+ is established; dump with --tcp-established`));
    const c = criu(['dump', '--check-only', '-t', String(w.pid)]);
    expect(c.code).toBe(4);
    // the root's four and its child's three
    expect(c.stderr.match(/is established; dump with --tcp-established/g)?.length).toBe(7);
    expect(lockRules()).toEqual([]);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    w.kill();
  });

  it.skipIf(!haveIptables)('-R: the connections leave repair mode and the lock goes; the tree goes on', () => {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('tcp-R'), '-R', '--tcp-established']);
    expect(d.code, d.stderr).toBe(0);
    expect(lockRules()).toEqual([]);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    w.kill();
  });

  it('nftables: the lock is a table of its own, kept after the dump and deleted by the restore', (ctx) => {
    if (spawnSync('nft', ['list', 'tables'], { stdio: 'ignore' }).status !== 0) return ctx.skip('no nft here');
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    const dir = tmp('tcp-nft');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--tcp-established', '--network-lock', 'nftables']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const tables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('CRIU-'));
    expect(tables().length).toBe(1);
    expect(lockRules()).toEqual([]);
    const r = restoreDir(dir, ['--tcp-established']);
    expect(r.code, r.stderr).toBe(0);
    expect(tables()).toEqual([]);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    killTree(w.pid);
  });

  it('a network lock whose tool is missing is one clear error; the tree runs on, its connections out of repair mode', () => {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    for (const [method, tool, pkg] of [['nftables', 'nft', 'nftables'], ['iptables', 'iptables', 'iptables']] as const) {
      const r = criu(['dump', '-t', String(w.pid), '-D', tmp('tcp-nolock'), '--tcp-established', '--network-lock', method], 60_000, { PATH: '/nonexistent' });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`criu: network lock: ${tool} is not installed (Debian package ${pkg})\n`);
    }
    expect(lockRules()).toEqual([]);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    w.kill();
  });

  it('--tcp-close: the connections come back closed; the tasks run on', () => {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    const dir = tmp('tcp-close');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--tcp-close']);
    expect(d.code, d.stderr).toBe(0);
    expect(readdirSync(dir).filter((n) => n.startsWith('tcp-stream-'))).toEqual([]);
    expect(waitReaped(w.pid)).toBe(true);
    // without either option the restore says what to give it
    const no = criu(['restore', '-D', dir, '-d']);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/established TCP connection\(s\).*restore with --tcp-established \(or --tcp-close/);
    const est = criu(['restore', '-D', dir, '-d', '--tcp-established']);
    expect(est.code).toBe(1);
    expect(est.stderr).toBe('criu: the checkpoint was dumped with --tcp-close (its connections were not kept): restore it with --tcp-close\n');
    const r = restoreDir(dir, ['--tcp-close']);
    expect(r.code, r.stderr).toBe(0);
    for (const p of treePids(w.pid)) {
      expect(alive(p)).toBe(true);
      // no descriptor of the tree is a connected socket any more
      const est = execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' });
      expect(est).not.toContain(`pid=${p},`);
    }
    killTree(w.pid);
  });

  it('--skip-in-flight: a listener with a connection not accepted yet is refused by name without it', () => {
    const [port] = freePorts(1) as [number];
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', [
      'import socket, time',
      `l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", ${port})); l.listen(4)`,
      `c = socket.create_connection(("127.0.0.1", ${port}))`,
      'while True: time.sleep(1)',
    ].join('\n')]);
    for (let i = 0; i < 300 && !execFileSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' }).includes(`:${port}`); i++) sleep(10);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '--tcp-established']);
    expect(c.code).toBe(4);
    expect(c.stderr).toMatch(new RegExp(`listening TCP socket 127\\.0\\.0\\.1:${port} has 1 connection\\(s\\) not accepted yet \\(in flight\\); dump with --skip-in-flight`));
    const ok = criu(['dump', '--check-only', '-t', String(w.pid), '--tcp-established', '--skip-in-flight']);
    expect(ok.code, ok.stderr).toBe(0);
    w.kill();
  });
});

/** redis-server serves its client while the fingerprint is taken: what that moves */
const REDIS_MOVING = [
  ...TCP_MOVING,
  { path: /\.fcntl\.(FIONREAD|SIOCOUTQ)$|\.fdinfo\b/, why: 'the client outside the tree sends a request every 10 ms: the queues of the connection move between the fingerprint and the freeze' },
];

describe('real programs over TCP', () => {
  const redis = '/usr/bin/redis-server';

  it.skipIf(!existsSync(redis) || !haveIptables)('redis-server with a client outside the tree: the same connection goes on after each restore, the counter with it', () => {
    const [port] = freePorts(1) as [number];
    const work = tmp('redis');
    // the client: one connection, INCR in a loop, each answer one more than the last
    const out = path.join(work, 'client.out');
    const clientProgram = [
      'import os, socket, sys, time',
      `out = ${JSON.stringify(out)}`,
      'def say(t):',
      '    open(out + ".tmp", "w").write(t); os.replace(out + ".tmp", out)',
      'for i in range(500):',
      '    try:',
      `        s = socket.create_connection(("127.0.0.1", ${port})); break`,
      '    except OSError: time.sleep(0.02)',
      'me = s.getsockname()[1]',
      'f = s.makefile("rb")',
      'last = 0',
      'while True:',
      '    try:',
      '        s.sendall(b"*2\\r\\n$4\\r\\nINCR\\r\\n$7\\r\\ncounter\\r\\n")',
      '        line = f.readline()',
      '    except OSError as e:',
      '        say(f"error {e}"); sys.exit(1)',
      '    if not line.startswith(b":") or int(line[1:]) != last + 1:',
      '        say(f"bad {line!r} after {last}"); sys.exit(1)',
      '    last = int(line[1:])',
      '    say(f"{me} {last}")',
      '    time.sleep(0.01)',
    ].join('\n');
    let client: number | undefined;
    const talk = outsideClient(out);
    roundTrip('launch', [redis, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work, '--daemonize', 'no', '--loglevel', 'warning'], (pid) => {
      talk.goesOn();
      expect(alive(pid)).toBe(true);
    }, false, () => {
      if (client === undefined) {
        const c = startWorkload('launch', ['/usr/bin/python3', '-c', clientProgram], tmp('redis-client'));
        client = c.pid;
        outside.push(c.pid);
      }
      return talk.ready(10);
    }, REDIS_MOVING, undefined, ['--tcp-established'], ['--tcp-established']);
  });

  /** the pair runs between the restore and the fingerprint: each write of either copies a page they shared copy-on-write */
  const PAIR_MOVING = [...TCP_MOVING, { path: /^sharedPages\[/, why: 'parent and child write as they talk (python\'s reference counts, its heap): pages they shared copy-on-write at the dump are copied by the first write after the restore' }];

  it.skipIf(!haveIptables)('python3: a client and a server in the tree, talking over loopback, go on talking after each restore', () => {
    const [port] = freePorts(1) as [number];
    const file = path.join(tmp('py-pair'), 'count');
    const program = [
      'import os, socket, time',
      `file = ${JSON.stringify(file)}`,
      `l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", ${port})); l.listen(1)`,
      'if os.fork() == 0:',
      '    l.close()',
      `    c = socket.create_connection(("127.0.0.1", ${port})); f = c.makefile("rwb")`,
      '    n = 0',
      '    while True:',
      '        f.write(b"%d\\n" % n); f.flush()',
      '        m = int(f.readline())',
      '        if m != n + 1: os._exit(1)',
      '        n = m + 1',
      '        time.sleep(0.01)',
      'a, _ = l.accept(); f = a.makefile("rwb")',
      'while True:',
      '    n = int(f.readline())',
      '    f.write(b"%d\\n" % (n + 1)); f.flush()',
      '    open(file + ".tmp", "w").write(str(n)); os.replace(file + ".tmp", file)',
    ].join('\n');
    const count = () => Number(readState(file)) || 0;
    roundTrip('launch', ['/usr/bin/python3', '-c', program], (pid) => {
      const a = count();
      sleep(600);
      expect(treePids(pid).every(alive)).toBe(true);
      expect(treePids(pid).length).toBe(2);
      expect(count()).toBeGreaterThan(a);
    }, false, () => count() > 4, PAIR_MOVING, undefined, ['--tcp-established'], ['--tcp-established']);
  });
});

describe.skipIf(!CRIU || !haveIptables)(`TCP connections across CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary: give CRIU=/path/to/criu'})`, () => {
  function tree() {
    const [p4, p6, pm, pp] = freePorts(4) as [number, number, number, number];
    const peer = startPeer(pp);
    const w = startWorkload('tcpconn', ['tree', String(p4), String(p6), String(pm), String(pp)]);
    return { peer, w };
  }

  it('CRIU dumps tcpconn with --tcp-established, crtools restores it: every byte arrives, CRIU\'s lock is lifted', () => {
    const { peer, w } = tree();
    const dir = tmp('tcp-criu-dump');
    criuDumpTcp(w.pid, dir);
    expect(lockRules().length).toBe(14);
    const r = restoreDir(dir, ['--tcp-established']);
    expect(r.code, r.stderr).toBe(0);
    expect(lockRules()).toEqual([]);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    killTree(w.pid);
  });

  it('crtools dumps tcpconn with --tcp-established, CRIU restores it: every byte arrives, our lock is lifted', () => {
    const { peer, w } = tree();
    const dir = tmp('tcp-our-dump');
    ourDumpCriuRestoreTcp(w.pid, dir);
    expect(bothVerdicts(w.pid, w.state, peer)).toEqual(['check ok k=1', 'check ok k=1']);
    killTree(w.pid);
  });
});
