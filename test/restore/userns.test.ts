/**
 * A tree in a user namespace of its own (issue 17, user namespaces), its pid, mount, UTS and IPC
 * namespaces owned by it: dumped as CRIU 4.2 dumps it (the namespace's id in ids-<pid>.img, its
 * uid and gid maps in userns-<id>.img, the tasks' creds as ids inside it) and restored with the
 * root born in a new user namespace mapped the same way from outside, its other namespaces made
 * inside it, every task with its ids, groups and capabilities there. The fingerprint compares
 * the maps and which namespaces the user namespace owns. Network and time namespaces of the
 * tree's own beside it are made inside it (the user namespace made first, restorer userns.ts),
 * with a pid namespace of the tree's own. What is not carried yet (those without one, a user
 * namespace nested in another) is refused by name. Images are checked with Debian's crit. CRIU 4.2 interop is not possible on this machine:
 * CRIU 4.2 dumps no tree in a user namespace without a mount namespace (its parasite refuses a
 * task whose /proc is not its namespace's: "can't dump unprivileged task whose /proc doesn't
 * belong to it"), nor this one with one (its mounts: "Can't lookup mount=N"), and restores none
 * (without a mount namespace: "Unable to open the proc file system"; with one, its sysfs mount
 * inside the new user namespace fails with EPERM), so no test runs it here.
 * Workload test/workloads/userns.c.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readImageFile, writeImageFile } from '@crtools/images';
import { buildRestorePlan } from '@crtools/restorer';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { fixturesDir } from '../lib/paths.js';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitGone } from '../dump/helpers.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';

const restoredRoots: number[] = [];
afterEach(() => {
  killRestored();
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

const MULTI = { uid: ['0 0 1', '1 100000 1000'], gid: ['0 0 1', '1 200000 500'] };
const ROOT = { uid: ['0 0 1'], gid: ['0 0 1'] };
const NOROOT = { uid: ['0 100000 1000'], gid: ['0 200000 500'] };

/** SO_PEERCRED (struct ucred: pid, uid, gid) of a listener: its pid is the process that listened, */
const LISTENER_PID = {
  path: /^tasks\[\d+\]\.fds\[\d+\]\.sockopts\.SO_PEERCRED$/,
  why: 'a listener\'s peer pid is the task that called listen(), the root that opens every file at restore (as with CRIU, whose images have no field for it); its uid and gid are carried',
  keep: (v: unknown) => String(v).slice(8),
};

function nsLink(pid: number, kind: string): string {
  return readlinkSync(`/proc/${pid}/ns/${kind}`);
}

/** The tree's user namespace as the fingerprint shows it: a child of ours, these maps, owning `owns`. */
function expectUserPrint(pid: number, maps: { uid: string[]; gid: string[] }, owns: string[]): void {
  const n = fingerprint(pid).namespaces!;
  expect(n.own).toContain('user');
  expect(n.user).toEqual({ uidMap: maps.uid, gidMap: maps.gid, childOfOurs: true, owns });
  expect(n.nested).toEqual({});
}

/** The images as CRIU 4.2 writes them (Debian's crit decodes them): ids, userns-<id>.img, creds inside. */
function expectImages(dir: string, maps: { uid: string[]; gid: string[] }, kid: { uid: number; gid: number; groups: number[] }): void {
  const ids = critDecode(`${dir}/ids-1.img`).entries[0];
  // criu's own 1..8, then the root's: pid 9, user 10, mnt 11 (when it has one), ipc, uts
  expect(ids).toMatchObject({ pid_ns_id: 9, user_ns_id: 10, net_ns_id: 2, time_ns_id: 5, cgroup_ns_id: 8 });
  const inv = critDecode(`${dir}/inventory.img`).entries[0];
  expect(inv.root_ids).toMatchObject({ user_ns_id: 7 });
  const u = critDecode(`${dir}/userns-10.img`).entries;
  expect(u).toHaveLength(1);
  const ext = (l: string) => {
    const [first, lower_first, count] = l.split(' ').map(Number);
    return { first, lower_first, count };
  };
  expect(u[0]).toEqual({ uid_map: maps.uid.map(ext), gid_map: maps.gid.map(ext) });
  const creds = (pid: number) => critDecode(`${dir}/core-${pid}.img`).entries[0].thread_core.creds;
  expect(creds(1)).toMatchObject({ uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0 });
  const pids = (critDecode(`${dir}/pstree.img`).entries as { pid: number }[]).map((e) => e.pid);
  expect(pids).toEqual([1, 2]);
  expect(creds(2)).toMatchObject({ uid: kid.uid, euid: kid.uid, suid: kid.uid, fsuid: kid.uid, gid: kid.gid, egid: kid.gid, sgid: kid.gid, fsgid: kid.gid, groups: kid.groups });
}

/** unshare --fork waits for its child: the restored root is the restorer's child instead (as with CRIU) */
const UNSHARE_PARENT = {
  path: /^tasks\[\d+\]\.(stat\.ppid|status\.PPid)$/,
  why: 'the root was the child of the unshare process, which stays outside the tree: restored, it is the child of the restore (or of the reaper)',
};

/** The sleep a test's unshare command line runs, once it sleeps (clock_nanosleep: its start-up mappings made). */
function sleeping(p: number): boolean {
  try {
    return readlinkSync(`/proc/${p}/exe`).endsWith('/sleep') && readFileSync(`/proc/${p}/syscall`, 'utf8').startsWith('230 ');
  } catch {
    return false;
  }
}

/** Run `unshare ARGS` (ending in a sleep), hand its sleep to `body`, and kill what unshare started, by pid. */
function underUnshare(args: string[], body: (sleep: number) => void): void {
  const u = spawn('unshare', args, { stdio: 'ignore', detached: true });
  try {
    let init = 0;
    for (let i = 0; i < 500 && !init; i++) {
      init = treePids(u.pid!).find(sleeping) ?? 0;
      if (!init) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    expect(init).toBeGreaterThan(0);
    body(init);
  } finally {
    killTreeAndWait(u.pid!);
  }
}

/** A dump of the tree at `root` refused by name (exit 4, `why`), the tree left running untraced. */
function expectRefused(root: number, name: string, why: RegExp): void {
  const d = criu(['dump', '-t', String(root), '-D', tmp(name), '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(4);
  expect(d.stderr).toMatch(why);
  expect(readFileSync(`/proc/${root}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
}

describe('a tree in a user namespace of its own', () => {
  it('userns (pid, uts, ipc; several map extents written from outside) round trips twice: maps, creds inside, ownership, fingerprint equal; images as CRIU 4.2 writes them', () => {
    roundTrip('userns', ['pid,uts,ipc', 'multi'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok uid=0 kid=1000/400 groups=2');
      expect(nsLink(pid, 'user')).not.toBe(nsLink(process.pid, 'user'));
      expectUserPrint(pid, MULTI, ['ipc', 'pid', 'uts']);
      // the kid's ids as the host sees them: through the maps
      const kid = treePids(pid).find((p) => p !== pid)!;
      const st = readFileSync(`/proc/${kid}/status`, 'utf8');
      expect(st).toMatch(/\nUid:\s+100999\s+100999\s+100999\s+100999\n/);
      expect(st).toMatch(/\nGid:\s+200399\s+200399\s+200399\s+200399\n/);
      expect(st).toMatch(/\nGroups:\s+200004 200006\s*\n/);
    }, true, undefined, [], (dir) => {
      expectImages(dir, MULTI, { uid: 1000, gid: 400, groups: [5, 7] });
      // the kid's queue: its owner and creator as ids inside the namespace (as CRIU's userns_uid)
      const ipc = critDecode(`${dir}/ids-1.img`).entries[0].ipc_ns_id;
      const q = critDecode(`${dir}/ipcns-msg-${ipc}.img`).entries;
      expect(q).toHaveLength(1);
      expect(q[0].desc).toMatchObject({ key: 0x7573, uid: 1000, gid: 400, cuid: 1000, cgid: 400 });
    });
  });

  it('userns with a mount namespace (unshare --user --map-root-user --pid --fork --mount-proc\'s shape) round trips twice, fingerprint equal', () => {
    roundTrip('userns', ['pid,mnt,uts,ipc', 'root'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok uid=0 kid=0/0 groups=1');
      expectUserPrint(pid, ROOT, ['ipc', 'mnt', 'pid', 'uts']);
    }, true, undefined, [], (dir) => {
      expectImages(dir, ROOT, { uid: 0, gid: 0, groups: [0] });
      expect(critDecode(`${dir}/ids-1.img`).entries[0]).toMatchObject({ mnt_ns_id: 11 });
    });
  });

  it('unshare --user --map-root-user --pid --fork --mount-proc itself: a sleep as the init, dumped and restored twice, fingerprint equal', () => {
    // (its stdio opened again inside: files opened through criu's mounts are another matter)
    underUnshare(['--user', '--map-root-user', '--pid', '--fork', '--mount-proc', 'setsid', 'sh', '-c', 'exec sleep 1000 </dev/null >/dev/null 2>&1'], (init) => {
      let root = init;
      for (let round = 0; round < 2; round++) {
        const before = fingerprint(root);
        expect(before.namespaces!.user).toEqual({ uidMap: ['0 0 1'], gidMap: ['0 0 1'], childOfOurs: true, owns: ['mnt', 'pid'] });
        const dir = tmp(`userns-unshare-${round}`);
        const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
        expect(d.code, d.stderr).toBe(0);
        expect(waitGone(root)).toBe(true);
        const pidfile = path.join(dir, 'restored.pid');
        const r = restoreDir(dir, ['--pidfile', pidfile]);
        expect(r.code, r.stderr).toBe(0);
        root = Number(readFileSync(pidfile, 'utf8'));
        restoredRoots.push(root);
        const after = fingerprint(root);
        expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, UNSHARE_PARENT])).toEqual([]);
        expect(readlinkSync(`/proc/${root}/exe`)).toMatch(/\/sleep$/);
      }
    });
  });

  it('--check-only on such a tree finds nothing to refuse; the tree runs on', () => {
    const w = startWorkload('userns', ['pid,uts', 'multi']);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('userns-check')]);
    expect(c.code, c.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok uid=0 kid=1000/400 groups=2');
    killTreeAndWait(w.pid);
  });

  it('userns with network and time namespaces of its own (zdtm\'s uns flavour: pid, uts, ipc, net, time) round trips twice: both owned by the user namespace again, its listener on a privileged port, clocks ahead and going on, fingerprint equal', () => {
    roundTrip('userns', ['pid,uts,ipc,net,time', 'multi'], (pid, state) => {
      // (net: it may still bind port 81 and set lo's flags; time: its clocks 1000 days ahead, never back)
      expect(askVerdict(state, pid, 10_000)).toBe('check ok uid=0 kid=1000/400 groups=2');
      expect(nsLink(pid, 'net')).not.toBe(nsLink(process.pid, 'net'));
      expect(nsLink(pid, 'time')).not.toBe(nsLink(process.pid, 'time'));
      expectUserPrint(pid, MULTI, ['ipc', 'net', 'pid', 'time', 'uts']);
    }, true, undefined, [], (dir) => {
      const ids = critDecode(`${dir}/ids-1.img`).entries[0];
      expect(ids).toMatchObject({ pid_ns_id: 9, user_ns_id: 10 });
      expect(ids.net_ns_id).toBeGreaterThan(8);
      expect(ids.time_ns_id).toBeGreaterThan(8);
      expect(critDecode(`${dir}/timens-${ids.time_ns_id}.img`).entries).toHaveLength(1);
      expect(critDecode(`${dir}/netns-${ids.net_ns_id}.img`).entries).toHaveLength(1);
      // the listener on 127.0.0.1:80, in the tree's network namespace
      const sk = critDecode(`${dir}/files.img`).entries.filter((e: { type: string }) => e.type === 'INETSK');
      expect(sk.some((e: { isk: { src_port: number; state: number } }) => e.isk.src_port === 80 && e.isk.state === 10)).toBe(true);
    });
  });

  it('userns with a network namespace below the root\'s (the kid unshared it before taking its ids) round trips twice: made in the tree\'s user namespace again, not the root\'s, its listener on port 80 there, fingerprint equal', () => {
    roundTrip('userns', ['pid,uts,ipc,net,subnet', 'multi'], (pid, state) => {
      // (the kid exits 7 when its network namespace is the root's, or owned by another user
      // namespace than the tree's, or its listener there takes no connection)
      expect(askVerdict(state, pid, 10_000)).toBe('check ok uid=0 kid=1000/400 groups=2');
      const kid = treePids(pid).find((p) => p !== pid)!;
      expect(nsLink(kid, 'net')).not.toBe(nsLink(pid, 'net'));
      const n = fingerprint(pid).namespaces!;
      expect(n.user).toEqual({ uidMap: MULTI.uid, gidMap: MULTI.gid, childOfOurs: true, owns: ['ipc', 'net', 'pid', 'uts'] });
      expect(n.nested).toEqual({ [String(kid)]: ['net'] });
      expect(Object.keys(n.netBelow ?? {})).toEqual([String(kid)]);
    }, true, undefined, [], (dir) => {
      const root = critDecode(`${dir}/ids-1.img`).entries[0];
      const kid = critDecode(`${dir}/ids-2.img`).entries[0];
      expect(kid.net_ns_id).toBeGreaterThan(root.net_ns_id);
      expect(kid.user_ns_id).toBe(root.user_ns_id);
      expect(critDecode(`${dir}/netns-${kid.net_ns_id}.img`).entries).toHaveLength(1);
      expect(critDecode(`${dir}/netdev-${kid.net_ns_id}.img`).entries).toMatchObject([{ type: 'LOOPBACK', name: 'lo' }]);
    });
  });

  it('userns whose maps leave the host\'s root unmapped (written from outside, as newuidmap): a unix listener, its socket file and its I/O signal owner made by a non-root uid inside, a pty pair given to it, round trip twice, fingerprint equal', () => {
    // criu's ids are nobody inside: each step that takes other ids for a call (listen, F_SETOWN_EX,
    // the socket file, the pty's slave) is taken by a thread of the task, never switched back from
    roundTrip('userns', ['pid,uts,files', 'noroot'], (pid, state) => {
      // (the kid exits when its listener's SO_PEERCRED ids, socket file owner and mode, or owner of
      // I/O signals and O_ASYNC change; the root checks its pty's index and the slave's owner)
      expect(askVerdict(state, pid, 10_000)).toBe('check ok uid=0 kid=100/40 groups=2');
      expectUserPrint(pid, NOROOT, ['pid', 'uts']);
      const kid = treePids(pid).find((p) => p !== pid)!;
      expect(readFileSync(`/proc/${kid}/status`, 'utf8')).toMatch(/\nUid:\s+100100\s+100100\s+100100\s+100100\n/);
    }, true, undefined, [LISTENER_PID], (dir) => {
      expectImages(dir, NOROOT, { uid: 100, gid: 40, groups: [5, 7] });
      const files = critDecode(`${dir}/files.img`).entries as { type: string; usk?: { state: number; uflags: number; file_perms?: { uid: number; gid: number; mode: number }; fown: { uid: number; euid: number } }; tty?: unknown }[];
      const listener = files.find((e) => e.type === 'UNIXSK' && e.usk!.state === 10)!;
      // (file owners as the ids inside the tree's user namespace, as CRIU writes them: the
      // socket file's, the terminal's, the uids recorded with the I/O signal owner; the host's
      // are 100100 and 200040)
      expect(listener.usk!.file_perms).toMatchObject({ uid: 100, gid: 40 });
      expect(listener.usk!.fown).toMatchObject({ uid: 100, euid: 100 });
      expect(critDecode(`${dir}/tty-info.img`).entries.some((t: { uid: number; gid: number }) => t.uid === 100 && t.gid === 40)).toBe(true);
    });
  });

  it('a user namespace with a network namespace of its own beside it but criu\'s pid namespace is refused by name (exit 4), the tree runs on', () => {
    underUnshare(['--user', '--map-root-user', '--net', '--fork', 'setsid', 'sleep', '1000'], (init) => {
      expectRefused(init, 'userns-net', new RegExp(`root ${init} lives in a user namespace of its own and network namespace of its own \\(net\\) but not a pid namespace of its own`));
    });
  });

  it('a user namespace nested in another is refused by name (exit 4), the tree runs on', () => {
    underUnshare(['--user', '--map-root-user', 'unshare', '--user', '--map-root-user', '--pid', '--fork', 'setsid', 'sleep', '1000'], (init) => {
      expectRefused(init, 'userns-nested', /lives in a user namespace of its own that is not a child of criu's \(nested user namespaces\)/);
    });
  });
});

describe('the restore plan of a tree in a user namespace of its own', () => {
  it('takes the maps from userns-<id>.img and adds CLONE_NEWUSER; the image missing or mapless is bad input (exit 3); with a network namespace of its own beside it but not a pid namespace, unsupported (exit 4)', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-userns-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const ids = await readImageFile(path.join(d, 'ids-2680.img'));
    (ids.entries[0] as Record<string, unknown>).user_ns_id = 10;
    await writeImageFile(path.join(d, 'ids-2680.img'), ids);
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('userns-10.img') });
    await writeImageFile(path.join(d, 'userns-10.img'), { magic: 'USERNS', entries: [{ uid_map: [], gid_map: [{ first: 0, lower_first: 0, count: 1 }] }] });
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('no uid map') });
    await writeImageFile(path.join(d, 'userns-10.img'), { magic: 'USERNS', entries: [{ uid_map: [{ first: 0, lower_first: 0, count: 1 }, { first: 1, lower_first: 100000, count: 1000 }], gid_map: [{ first: 0, lower_first: 0, count: 1 }] }] });
    const plan = await buildRestorePlan(d);
    expect(plan.namespaces).toMatchObject({
      cloneFlags: 0x10000000,
      userns: { uid: [{ first: 0, lowerFirst: 0, count: 1 }, { first: 1, lowerFirst: 100000, count: 1000 }], gid: [{ first: 0, lowerFirst: 0, count: 1 }] },
    });
    (ids.entries[0] as Record<string, unknown>).net_ns_id = 11;
    await writeImageFile(path.join(d, 'ids-2680.img'), ids);
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 4, message: expect.stringContaining('own user namespace and its own net namespace but in criu\'s pid namespace') });
  });
});
