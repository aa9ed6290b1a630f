import { readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExitCode, isCrtoolsError } from '@crtools/common';
import { NS_TYPE } from '@crtools/sys';
import { joinedPlan, joinNamespaces } from '../src/join-ns.js';
import type { RestorePlan } from '../src/plan.js';

const log = { info: () => undefined };

/** The error `f` throws: its code, exit code and message. */
function thrown(f: () => unknown): { code: string; exit: number | undefined; message: string } {
  try {
    f();
  } catch (e) {
    if (!isCrtoolsError(e)) throw e;
    return { code: e.code, exit: e.exitCode, message: e.message };
  }
  throw new Error('nothing thrown');
}

const plan = (cloneFlags: number, more: Record<string, unknown> = {}): RestorePlan => ({ tasks: [], files: [], namespaces: { cloneFlags, ...more } }) as unknown as RestorePlan;

describe('--join-ns options', () => {
  it('a user namespace\'s UID,GID: each 0-65535 or empty, as CRIU takes them; anything else a usage error (exit 1 from the command line)', () => {
    // (the restorer's own user namespace is not joined, as CRIU: nothing opened stays)
    expect(joinNamespaces([{ ns: 'user', file: '/proc/self/ns/user', extra: '0,0' }], 0, log)?.fds).toEqual([]);
    for (const extra of ['0,70000', 'a,0', '0,0,0', '-1']) {
      const e = thrown(() => joinNamespaces([{ ns: 'user', file: '/proc/self/ns/user', extra }], 0, log));
      expect(e, extra).toMatchObject({ code: 'USAGE', exit: ExitCode.USAGE });
      expect(e.message).toContain(`invalid user namespace extra options ${extra}`);
    }
  });

  it('mnt is opened for the launcher; the time namespace this process and its children are in needs no setns; pid and unknown kinds are usage errors', () => {
    expect(readlinkSync('/proc/self/ns/time_for_children')).toBe(readlinkSync('/proc/self/ns/time'));
    const j = joinNamespaces([{ ns: 'time', file: String(process.pid) }, { ns: 'mnt', file: '/proc/self/ns/mnt' }], 0, log)!;
    try {
      expect(j.flags).toBe(NS_TYPE.time | NS_TYPE.mnt);
      expect(j.fds.map((f) => [f.name, f.type, readlinkSync(`/proc/self/fd/${f.fd}`)])).toEqual([
        ['mnt', NS_TYPE.mnt, readlinkSync('/proc/self/ns/mnt')],
      ]);
      expect(j.inPlace).toEqual(['time']);
      expect(j.given).toEqual({ time: `--join-ns time:${process.pid}`, mnt: '--join-ns mnt:/proc/self/ns/mnt' });
    } finally {
      j.close();
    }
    expect(thrown(() => joinNamespaces([{ ns: 'pid', file: '1' }], 0, log))).toMatchObject({ code: 'USAGE', exit: ExitCode.USAGE });
    expect(thrown(() => joinNamespaces([{ ns: 'cgroup', file: '1' }], 0, log))).toMatchObject({ code: 'USAGE', exit: ExitCode.USAGE });
  });
});

describe('joinedPlan', () => {
  const joined = (given: Record<string, string>, flags: number, inPlace: string[] = []) => ({ flags, fds: [], given, inPlace, close: () => undefined });

  it('takes the joined kinds out of the root\'s new namespaces, and the clocks, mounts and maps out of what the launcher makes', () => {
    const p = plan(NS_TYPE.pid | NS_TYPE.user | NS_TYPE.mnt | NS_TYPE.uts, {
      clocks: { monotonic: { sec: 1n, nsec: 0n }, boottime: { sec: 1n, nsec: 0n } },
      mounts: [{ id: 1, parent: 0 }],
      userns: { uid: [{ first: 0, lowerFirst: 0, count: 1 }], gid: [{ first: 0, lowerFirst: 0, count: 1 }] },
    });
    const r = joinedPlan(p, joined({ user: '--join-ns user:1', mnt: '--join-ns mnt:1', time: '--join-ns time:1' }, NS_TYPE.user | NS_TYPE.mnt | NS_TYPE.time), {});
    expect(r.plan.namespaces).toMatchObject({ cloneFlags: NS_TYPE.pid | NS_TYPE.uts, clocks: undefined, mounts: undefined, userJoined: true });
    expect(r.plan.namespaces!.userns).toEqual(p.namespaces!.userns);
  });

  it('refuses by name, exit 4, before anything is made: user for a tree in criu\'s pid namespace, time/user/mnt as a sibling, mnt with --root, net beside a network namespace of the checkpoint\'s', () => {
    const cases: [RestorePlan, Record<string, string>, number, { root?: string; restoreSibling?: boolean }, string][] = [
      [plan(NS_TYPE.uts), { user: '--join-ns user:7' }, NS_TYPE.user, {}, "restore: --join-ns user:7: the tree's pids are in criu's pid namespace"],
      [plan(NS_TYPE.pid), { time: '--join-ns time:7' }, NS_TYPE.time, { restoreSibling: true }, 'restore: --join-ns time:7: a tree that joins a time namespace cannot be restored as a sibling of the restorer'],
      [plan(0), { mnt: '--join-ns mnt:7' }, NS_TYPE.mnt, { root: '/r' }, 'restore: --join-ns mnt:7: --root with a joined mount namespace'],
    ];
    for (const [p, given, flags, opts, msg] of cases) {
      const e = thrown(() => joinedPlan(p, joined(given, flags), opts));
      expect(e).toMatchObject({ code: 'UNSUPPORTED_OPTION', exit: ExitCode.UNSUPPORTED });
      expect(e.message).toContain(msg);
    }
    // (a time namespace the restorer's children are born in anyway needs no helper: a sibling
    // restore takes it, as CRIU's libcriu test_join_ns asks)
    const inPlace = joinedPlan(plan(NS_TYPE.pid | NS_TYPE.time), joined({ time: '--join-ns time:7' }, NS_TYPE.time, ['time']), { restoreSibling: true });
    expect(inPlace.plan.namespaces).toMatchObject({ cloneFlags: NS_TYPE.pid, clocks: undefined });
    // (the joined namespace: this process's, '' to the netlink helpers; the checkpoint's has no
    // device at all, so the joined one is not it)
    const net = { ...joined({ net: '--join-ns net:7' }, NS_TYPE.net), net: { fd: 0, path: '', close: () => undefined } };
    const e = thrown(() => joinedPlan(plan(0, { net: { id: 1, links: [], raw: {} } }), net, {}));
    expect(e).toMatchObject({ code: 'UNSUPPORTED_OPTION', exit: ExitCode.UNSUPPORTED });
    expect(e.message).toMatch(/^restore: --join-ns net:7: the checkpoint holds a network namespace of its own and the joined one is not it \(it has .* beside the dumped ones\)/);
    const ext = { ...joined({ net: '--join-ns net:7' }, NS_TYPE.net), net: { fd: 0, path: '', close: () => undefined } };
    expect(thrown(() => joinedPlan(plan(0, { extNet: { key: 'k', fd: 3 } }), ext, {})).message).toContain('the checkpoint holds an external network namespace (k)');
  });
});
