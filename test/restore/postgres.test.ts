/**
 * PostgreSQL as a container's init: the postmaster (pid 1 of a pid namespace of its own, with
 * its own IPC and UTS namespaces: its SysV segment lives there) and its background processes,
 * with a client outside the tree connected over TCP that goes on asking nextval() of one
 * sequence over the same connection through each restore. Round-tripped twice; the fingerprints
 * are taken on the frozen and the stopped tree (PostgreSQL's processes keep working as it runs).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import type { ExpectedChange } from '@crtools/inspect';
import { TCP_MOVING, cleanupTcp, freePorts, haveIptables, outside, outsideClient } from './tcp-helpers.js';
import { alive, killAllStarted, readState, sleep, startWorkload, tmp, treePids } from '../dump/helpers.js';

afterEach(() => {
  killRestored();
  killAllStarted();
  cleanupTcp();
});

/** The newest PostgreSQL server Debian installed (postgresql-NN), or undefined. */
function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const v = readdirSync(base).filter((d) => existsSync(path.join(base, d, 'bin/postgres'))).sort((a, b) => Number(b) - Number(a))[0];
  return v ? path.join(base, v, 'bin') : undefined;
}

const PG = postgresBin();
const SHM_DIR = '/dev/shm';
const idOf = (flag: string): number | undefined => {
  const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
};
const pgUid = idOf('-u');
const pgGid = idOf('-g');

/** A client that speaks PostgreSQL's protocol (trust authentication): nextval('s') every 10 ms on one connection, each answer one more than the last. */
function clientProgram(port: number, out: string): string {
  return [
    'import os, socket, struct, sys, time',
    `out = ${JSON.stringify(out)}`,
    'def say(t):',
    '    open(out + ".tmp", "w").write(t); os.replace(out + ".tmp", out)',
    'def recv_exact(s, n):',
    '    b = b""',
    '    while len(b) < n:',
    '        c = s.recv(n - len(b))',
    '        if not c: raise OSError("closed")',
    '        b += c',
    '    return b',
    'def message(s):',
    '    t = recv_exact(s, 1); n = struct.unpack("!i", recv_exact(s, 4))[0]',
    '    return t, recv_exact(s, n - 4)',
    'def until_ready(s):',
    '    rows = []',
    '    while True:',
    '        t, body = message(s)',
    '        if t == b"E": say("error " + body.decode(errors="replace")); sys.exit(1)',
    '        if t == b"D":',
    '            n = struct.unpack("!i", body[2:6])[0]; rows.append(body[6:6 + n].decode())',
    '        if t == b"Z": return rows',
    'def query(s, q):',
    '    b = q.encode() + b"\\0"; s.sendall(b"Q" + struct.pack("!i", len(b) + 4) + b)',
    '    return until_ready(s)',
    'for i in range(500):',
    '    try:',
    `        s = socket.create_connection(("127.0.0.1", ${port})); break`,
    '    except OSError: time.sleep(0.02)',
    'p = b"user\\0postgres\\0database\\0postgres\\0\\0"',
    's.sendall(struct.pack("!ii", len(p) + 8, 196608) + p)',
    'until_ready(s)',
    'query(s, "create sequence if not exists s")',
    'me = s.getsockname()[1]',
    'last = None',
    'while True:',
    '    try:',
    '        v = int(query(s, "select nextval(\'s\')")[0])',
    '    except OSError as e:',
    '        say(f"error {e}"); sys.exit(1)',
    '    if last is not None and v != last + 1:',
    '        say(f"bad {v} after {last}"); sys.exit(1)',
    '    last = v',
    '    say(f"{me} {last}")',
    '    time.sleep(0.01)',
  ].join('\n');
}

/** What moves between a fingerprint of the frozen tree and one of the tree restored stopped: the client keeps asking. */
const PG_MOVING: ExpectedChange[] = [
  ...TCP_MOVING,
  { path: /\.fcntl\.(FIONREAD|SIOCOUTQ)$|\.fdinfo\b/, why: 'the client outside the tree sends a query every 10 ms: the queues of its connection move between the freeze and the fingerprint' },
  { path: /\.sockopts\.SO_REUSEADDR$/, why: 'the frozen fingerprint sees the backend\'s TCP connection in repair mode, where the kernel reports SO_REUSEADDR as 2 (SK_FORCE_REUSE); the restored one has the task\'s 1', keep: (v: unknown) => (v === 2 ? 1 : v) },
  { path: /^sharedPages\[/, why: 'the postmaster\'s children share heap and stack pages in patterns the fork order cannot make again (pages siblings forked apart share without their parent, a page of the parent only some children kept): these come back as copies with the same contents (README: copy-on-write sharing)' },
];

describe('real programs in namespaces of their own', () => {
  it.skipIf(!PG || pgUid === undefined || !haveIptables)(`PostgreSQL (${PG ?? 'not installed: Debian package postgresql'}) as the init of its own pid, IPC and UTS namespaces, with a client outside the tree: the same connection goes on after each restore, the sequence with it`, () => {
    const [port] = freePorts(1) as [number];
    const work = tmp('postgres');
    chownSync(work, pgUid!, pgGid!);
    const data = path.join(work, 'data');
    const asPostgres = ['/usr/bin/setpriv', '--reuid', 'postgres', '--regid', 'postgres', '--init-groups'];
    const init = spawnSync(asPostgres[0]!, [...asPostgres.slice(1), path.join(PG!, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { encoding: 'utf8', timeout: 120_000 });
    expect(init.status, init.stderr).toBe(0);
    const out = path.join(work, 'client.out');
    const talk = outsideClient(out);
    let client: number | undefined;
    const server = [...asPostgres, path.join(PG!, 'postgres'), '-D', data, '-p', String(port), '-k', work, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
    // (the postmaster is killed, not shut down: the dynamic shared memory segments it made in
    // /dev/shm are removed after the test, those it did not find there)
    const shmBefore = new Set(readdirSync(SHM_DIR));
    onTestFinished(() => {
      for (const f of readdirSync(SHM_DIR)) if (f.startsWith('PostgreSQL.') && !shmBefore.has(f)) rmSync(path.join(SHM_DIR, f), { force: true });
    });
    roundTrip('nslaunch', ['pid,ipc,uts', ...server], (pid) => {
      // the client's sequence goes on over the same connection
      talk.goesOn();
      // the postmaster, its background processes and the client's backend
      const tree = treePids(pid);
      expect(tree.every(alive)).toBe(true);
      expect(tree.length).toBeGreaterThanOrEqual(6);
    }, false, () => {
      if (client === undefined) {
        if (spawnSync(path.join(PG!, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]).status !== 0) return false;
        const c = startWorkload('launch', ['/usr/bin/python3', '-c', clientProgram(port, out)], tmp('postgres-client'));
        client = c.pid;
        outside.push(c.pid);
      }
      return talk.ready(10);
    }, PG_MOVING, undefined, ['--tcp-established'], ['--tcp-established'], true);
  });
});
