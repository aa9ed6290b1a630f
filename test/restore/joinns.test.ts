/**
 * --join-ns (criu.8; crtools issue 17): a tree is restored inside namespaces of another process
 * (holders made by unshare), given by pid or by namespace file, of every kind CRIU 4.2 joins:
 * - net, uts and ipc: a tree dumped in criu's namespaces lives in exactly the holder's and goes on;
 * - user, uts, ipc and mnt at once: a tree dumped from a user, pid and UTS namespace of its own
 *   (userns.c) is restored into the holder's user namespace (mapped as the tree's was, written
 *   from outside so setgroups stays allowed), UTS, IPC and mount namespaces, its pid
 *   namespace made again inside the joined user namespace; then dumped there and restored into
 *   the same ones again (a mount namespace joined again is the one dumped: its mounts are not made
 *   again). Fingerprint equal but for the namespaces the first restore moved it into, then equal;
 * - time and mnt for a tree in criu's pid namespace (pattern.c), twice, fingerprint equal in the
 *   second round; CRIU 4.2 both ways;
 * - refused by name (exit 4) where the tasks would find what they had changed: a user namespace
 *   mapped otherwise, clocks that would go back, a mount namespace that is not the dumped one, a
 *   user namespace for a tree whose pids are criu's; pid as CRIU refuses it, a namespace that
 *   cannot be opened, bad UID,GID or a conflict with --empty-ns are usage errors (exit 1), and
 *   none of these leaves a process behind;
 * - over RPC (join_ns): time and mnt restored, refused with rst_sibling.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET, type ExpectedChange } from '@crtools/inspect';
import { alive, askVerdict, childrenOf, criu, killAllStarted, killTree, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { CriuClient } from '@crtools/rpc';
import { criuBin } from '../lib/paths.js';
import { CRIU, runBy } from './criu-ref.js';
import { killRestored, restoreDir } from './roundtrip.js';

const ns = (pid: number | 'self', kind: string) => readlinkSync(`/proc/${pid}/ns/${kind}`);

/** A process in new network, UTS and IPC namespaces (hostname crtools-joined), waited for until it is in them. */
function holder(): number {
  const p = spawn('unshare', ['--net', '--uts', '--ipc', 'sh', '-c', 'hostname crtools-joined && exec sleep 600'], { stdio: 'ignore', detached: true });
  p.unref();
  const pid = p.pid!;
  for (let i = 0; i < 500; i++) {
    try {
      if (ns(pid, 'uts') !== ns('self', 'uts') && readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep')) return pid;
    } catch {
      /* not yet */
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  throw new Error('the namespace holder did not start');
}

/** The sleep a holder's command line runs, once it sleeps. */
function sleeping(p: number): boolean {
  try {
    return readlinkSync(`/proc/${p}/exe`).endsWith('/sleep') && readFileSync(`/proc/${p}/syscall`, 'utf8').startsWith('230 ');
  } catch {
    return false;
  }
}

/** unshare processes the tests started (killed with their trees, by pid, at the end). */
const holders: number[] = [];

/**
 * A sleep in new namespaces of `kinds` (unshare --fork: time and pid need it). With user, the
 * maps are written from outside ("0 0 1", as --map-root-user, but setgroups left allowed: a
 * task restored inside takes its groups again), then the shell goes on to the sleep.
 */
function holderOf(kinds: string[]): number {
  const user = kinds.includes('user');
  // (a mount namespace gets a /dev/shm of its own: a dump of a tree in it reads every tmpfs it
  // shows, and the host's /dev/shm is other programs' to change meanwhile)
  const shm = kinds.includes('mnt') ? 'mount -t tmpfs -o size=1m joinns-shm /dev/shm && ' : '';
  const u = spawn('unshare', [...kinds.map((k) => `--${k === 'mnt' ? 'mount' : k}`), '--fork', 'sh', '-c', `${user ? 'read go; ' : ''}${shm}exec sleep 600`], { stdio: [user ? 'pipe' : 'ignore', 'ignore', 'ignore'], detached: true });
  u.unref();
  holders.push(u.pid!);
  if (user) {
    let sh = 0;
    for (let i = 0; i < 500 && !sh; i++) {
      sh = childrenOf(u.pid!)[0] ?? 0;
      try {
        if (sh && readlinkSync(`/proc/${sh}/ns/user`) === ns('self', 'user')) sh = 0;
      } catch {
        sh = 0;
      }
      if (!sh) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    expect(sh).toBeGreaterThan(0);
    writeFileSync(`/proc/${sh}/uid_map`, '0 0 1\n');
    writeFileSync(`/proc/${sh}/gid_map`, '0 0 1\n');
    u.stdin!.end('go\n');
  }
  let init = 0;
  for (let i = 0; i < 500 && !init; i++) {
    init = treePids(u.pid!).find(sleeping) ?? 0;
    if (!init) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  expect(init).toBeGreaterThan(0);
  for (const k of kinds) expect(ns(init, k), k).not.toBe(ns('self', k));
  return init;
}

let held: number | undefined;
afterEach(() => {
  killRestored();
  killAllStarted();
});
afterAll(() => {
  if (held !== undefined && alive(held)) killTree(held);
  for (const h of holders.splice(0)) {
    const pids = treePids(h);
    killTree(h);
    for (const p of pids) waitGone(p);
  }
});

describe('--join-ns', () => {
  it('net, uts and ipc of another process (by pid and by file): the restored task lives in them and goes on', () => {
    held = holder();
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('joinns');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restoreDir(dir, ['--join-ns', `uts:${held}`, '-J', `ipc:/proc/${held}/ns/ipc`, '--join-ns', `net:${held}`]);
    expect(r.code, r.stderr).toBe(0);
    for (const k of ['net', 'uts', 'ipc']) expect(ns(w.pid, k), k).toBe(ns(held, k));
    // (the others are criu's, as dumped)
    for (const k of ['mnt', 'pid', 'user']) expect(ns(w.pid, k), k).toBe(ns('self', k));
    expect(spawnSync('nsenter', ['-t', String(w.pid), '-u', 'hostname'], { encoding: 'utf8' }).stdout.trim()).toBe('crtools-joined');
    expect(w.check()).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('refused before anything is made: user for a tree in criu\'s pid namespace (exit 4), pid (exit 1, as CRIU), a namespace that is not there, bad UID,GID, and --empty-ns net beside net (exit 1)', () => {
    held ??= holder();
    const userHeld = holderOf(['user']);
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('joinns-bad');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir]).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const cases: [string[], number, string][] = [
      [['--join-ns', `user:/proc/${userHeld}/ns/user`], 4, `restore: --join-ns user:/proc/${userHeld}/ns/user: the tree's pids are in criu's pid namespace, which a task of the joined user namespace cannot set them in`],
      [['--join-ns', `user:${held},0,70000`], 1, `--join-ns user:${held}: invalid user namespace extra options 0,70000`],
      [['--join-ns', `pid:${held}`], 1, `--join-ns pid:${held}: joining a pid namespace is not supported`],
      [['--join-ns', 'uts:/nonexistent/ns'], 1, '--join-ns uts:/nonexistent/ns: cannot open /nonexistent/ns: ENOENT'],
      [['--join-ns', `uts:/proc/${held}/ns/ipc`], 1, `is not a uts namespace`],
      [['--join-ns', `net:${held}`, '--empty-ns', 'net'], 1, 'conflicting options --join-ns net and --empty-ns net'],
      [['--join-ns', 'bogus'], 1, 'invalid --join-ns argument: bogus'],
    ];
    for (const [args, code, msg] of cases) {
      const r = restoreDir(dir, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toContain(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(alive(w.pid)).toBe(false);
    }
  });
});

/** The first restore moves the tree into the holder's namespaces of these kinds: they become the root's own (new fingerprint entries), owned by the joined user namespace. */
function joinedInto(kinds: string[]): ExpectedChange[] {
  const k = kinds.join('|');
  return [
    { path: /^namespaces\.own$/, why: `the first restore joins the holder's ${kinds.join(', ')} namespaces (--join-ns): they are the root's own after it, not criu's` },
    { path: new RegExp(`^namespaces\\.(${k})(\\.|\\[|$)`), why: 'what the joined namespaces hold, seen now that they are the root\'s own' },
    { path: /^namespaces\.user\.owns$/, why: 'the joined user namespace owns the other joined namespaces' },
  ];
}

/**
 * Dump the tree at `root` and restore it with `join` twice (round 1 dumps what round 0 restored),
 * each time: exit 0, the root's namespaces of `kinds` the holder's, the verdict `verdict`, the
 * fingerprint equal (round 0 but for `first`). Returns the last root.
 */
function joinTwice(name: string, root: number, state: string, holder: number, kinds: string[], join: string[], verdict: string, first: ExpectedChange[]): number {
  for (let round = 0; round < 2; round++) {
    const before = fingerprint(root);
    const dir = tmp(`joinns-${name}-${round}`);
    const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(root)).toBe(true);
    const pidfile = path.join(dir, 'restored.pid');
    const r = restoreDir(dir, [...join, '--pidfile', pidfile]);
    expect(r.code, `round ${round}: ${r.stderr}`).toBe(0);
    const was = root;
    root = Number(readFileSync(pidfile, 'utf8'));
    killLater.push(root);
    for (const k of kinds) expect(ns(root, k), `round ${round}: ${k}`).toBe(ns(holder, k));
    const after = fingerprint(root);
    const [a, b] = root !== was ? [insideView(before), insideView(after)] : [before, after];
    expect(compareFingerprints(a, b, [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...(round === 0 ? first : [])]), `round ${round}`).toEqual([]);
    expect(askVerdict(state, root, 10_000), `round ${round}`).toBe(verdict);
  }
  return root;
}

const killLater: number[] = [];
afterEach(() => {
  for (const p of killLater.splice(0)) {
    const pids = treePids(p);
    killTree(p);
    for (const x of pids) waitGone(x);
  }
});

describe('--join-ns user, time and mnt', () => {
  it('a tree of its own user, pid and UTS namespaces into a holder\'s user, UTS, IPC and mount namespaces (its pid namespace made inside the joined user one), twice: fingerprint equal', () => {
    // (not time: a tree in a user namespace and a time namespace of its own is refused at dump yet)
    const h = holderOf(['user', 'uts', 'ipc', 'mnt']);
    const w = startWorkload('userns', ['pid,uts', 'root']);
    const kinds = ['user', 'uts', 'ipc', 'mnt'];
    const join = ['--join-ns', `user:${h},0,0`, '--join-ns', `uts:${h}`, '-J', `ipc:/proc/${h}/ns/ipc`, '--join-ns', `mnt:/proc/${h}/ns/mnt`];
    const root = joinTwice('userns', w.pid, w.state, h, kinds, join, 'check ok uid=0 kid=0/0 groups=1', joinedInto(['ipc', 'mnt']));
    // the pid namespace is the tree's own, inside the joined user namespace
    expect(readFileSync(`/proc/${root}/status`, 'utf8')).toMatch(/\nNSpid:\s+\d+\s+1\n/);
    expect(ns(root, 'pid')).not.toBe(ns(h, 'pid'));
    expect(fingerprint(root).namespaces!.user).toEqual({ uidMap: ['0 0 1'], gidMap: ['0 0 1'], childOfOurs: true, owns: ['ipc', 'mnt', 'pid', 'uts'] });
  });

  it('time and mnt for a tree in criu\'s pid namespace (by pid and by file), twice: fingerprint equal', () => {
    const h = holderOf(['time', 'mnt']);
    const w = startWorkload('pattern', ['1']);
    const root = joinTwice('pattern', w.pid, w.state, h, ['time', 'mnt'], ['-J', `time:/proc/${h}/ns/time`, '--join-ns', `mnt:${h}`], 'check ok bad=0', joinedInto(['time', 'mnt']));
    expect(root).toBe(w.pid);
  });

  it('refused by name once the root is born in them (exit 4, nothing left): maps that differ, clocks that would go back, a mount namespace that is not the dumped one', () => {
    const h = holderOf(['user', 'time', 'mnt']);
    const cases: [string, string[], string[], RegExp][] = [
      ['userns', ['pid,uts', 'multi'], ['--join-ns', `user:${h}`], new RegExp(`^criu: restore: --join-ns user:${h}: the joined user namespace maps uids "0 0 1", the checkpoint's "0 0 1; 1 100000 1000" \\(maps are written once\\): the tasks' ids would change$`)],
      ['timens', [], ['--join-ns', `time:${h}`], new RegExp(`^criu: restore: --join-ns time:${h}: CLOCK_MONOTONIC of the joined time namespace reads [\\d.]+ s, \\d{8}\\.\\d+ s earlier than the tasks read it at dump time: their clocks would go back$`)],
      ['mntns', [], ['--join-ns', `mnt:${h}`], new RegExp(`^criu: restore: --join-ns mnt:${h}: the checkpoint holds a mount namespace of its own \\(\\d+ mounts\\) and the joined one is not it`)],
    ];
    for (const [name, args, join, msg] of cases) {
      const w = startWorkload(name, args);
      const dir = tmp(`joinns-refused-${name}`);
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(d.code, `${name}: ${d.stderr}`).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const before = new Set(treePids(process.pid));
      const r = restoreDir(dir, join);
      expect(r.code, `${name}: ${r.stderr}`).toBe(4);
      expect(r.stderr.trim()).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      // (no restored task: nothing new under this process, nothing in the holder's namespaces)
      expect(treePids(process.pid).filter((p) => !before.has(p) && alive(p) && readlinkSync(`/proc/${p}/exe`).includes('/.build/'))).toEqual([]);
      expect(alive(w.pid)).toBe(false);
    }
  });
});

describe.skipIf(!CRIU)(`--join-ns time and mnt between crtools and CRIU (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
  for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
    it(`dumped by ${by}, restored by ${to} into a holder's UTS, IPC, time and mount namespaces: the task lives in them and goes on`, () => {
      const h = holderOf(['uts', 'ipc', 'time', 'mnt']);
      const w = startWorkload('pattern', ['1']);
      const dir = tmp(`joinns-${by}-${to}`);
      runBy(by, dir, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(waitReaped(w.pid)).toBe(true);
      runBy(to, dir, ['restore', '-D', dir, '-d', '-o', 'restore.log', '--join-ns', `uts:${h}`, '--join-ns', `ipc:${h}`, '--join-ns', `time:${h}`, '--join-ns', `mnt:${h}`]);
      killLater.push(w.pid);
      for (const k of ['uts', 'ipc', 'time', 'mnt']) expect(ns(w.pid, k), k).toBe(ns(h, k));
      expect(w.check()).toBe('check ok bad=0');
    });
  }
});

describe('--join-ns over RPC (CriuOpts join_ns)', () => {
  it('time and mnt by a RESTORE request: the task lives in them and goes on; with rst_sibling (the helper cannot start a sibling) refused by name, nothing left', async () => {
    const client = new CriuClient({ criu: criuBin });
    const h = holderOf(['time', 'mnt']);
    const join_ns = [{ ns: 'time', ns_file: String(h) }, { ns: 'mnt', ns_file: `/proc/${h}/ns/mnt` }];
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('joinns-rpc');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const err = await client.restore({ imagesDir: dir, rst_sibling: true, join_ns, log_file: 'restore-sibling.log' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`--join-ns time:${h}: a tree that joins a time namespace cannot be restored as a sibling of the restorer (--restore-sibling, as RPC callers ask) by crtools yet`);
    expect(alive(w.pid)).toBe(false);
    expect((await client.restore({ imagesDir: dir, join_ns, log_file: 'restore.log' })).pid).toBe(w.pid);
    killLater.push(w.pid);
    for (const k of ['time', 'mnt']) expect(ns(w.pid, k), k).toBe(ns(h, k));
    expect(w.check()).toBe('check ok bad=0');
  });

  it("with rst_sibling, the time namespace criu and its children are in is joined without a helper (CRIU's libcriu test_join_ns): the task, the client's child, lives in it and in the holder's UTS and IPC", async () => {
    const client = new CriuClient({ criu: criuBin });
    const h = holderOf(['uts', 'ipc']);
    // (criu swrk is this process's child: in its time namespace, and starts its children there)
    expect(ns('self', 'time_for_children')).toBe(ns('self', 'time'));
    const join_ns = [{ ns: 'uts', ns_file: String(h) }, { ns: 'ipc', ns_file: `/proc/${h}/ns/ipc` }, { ns: 'time', ns_file: String(process.pid) }];
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('joinns-rpc-sibling');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = await client.restore({ imagesDir: dir, rst_sibling: true, join_ns, log_file: 'restore.log' });
    expect(r.pid).toBe(w.pid);
    killLater.push(w.pid);
    expect(Number(readFileSync(`/proc/${w.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])).toBe(process.pid);
    for (const k of ['uts', 'ipc']) expect(ns(w.pid, k), k).toBe(ns(h, k));
    expect(ns(w.pid, 'time')).toBe(ns('self', 'time'));
    expect(w.check()).toBe('check ok bad=0');
  });
});
