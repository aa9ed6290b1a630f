/**
 * Trees in namespaces of their own (issue 17, the namespaces part): a tree in UTS and IPC
 * namespaces of its own is dumped as CRIU 4.2 dumps it (namespace ids in ids-<pid>.img, criu's
 * in inventory's root_ids, utsns-<id>.img and ipcns-var-<id>.img) and restored with the root born
 * in new namespaces holding the same names and sysctls; the namespaces not carried yet are
 * refused by name with exit 4 and the tree left running. Workload test/workloads/nsuts.c.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const VERDICT = 'check ok child=1';

function nsLink(pid: number, kind: string): string {
  return readlinkSync(`/proc/${pid}/ns/${kind}`);
}

describe('UTS and IPC namespaces of the tree', () => {
  it('nsuts round trips twice: names, IPC sysctls and the child in the same namespaces (fingerprint), verdict ok', () => {
    roundTrip('nsuts', ['ns-host', 'ns-dom'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      // born in namespaces of their own, not the restorer's
      expect(nsLink(pid, 'uts')).not.toBe(nsLink(process.pid, 'uts'));
      expect(nsLink(pid, 'ipc')).not.toBe(nsLink(process.pid, 'ipc'));
      const print = fingerprint(pid).namespaces!;
      expect(print.own).toEqual(['ipc', 'uts']);
      expect(print.uts).toEqual({ nodename: 'ns-host', domainname: 'ns-dom' });
      expect(print.ipc!.sysctls['/proc/sys/kernel/msgmni']).toBe('77');
      expect(print.nested).toEqual({});
    }, true, undefined, [], (dir, pid) => {
      // the images as CRIU 4.2 writes them (Debian's crit as the reference decoder)
      const ids = critDecode(`${dir}/ids-${pid}.img`).entries[0];
      const inv = critDecode(`${dir}/inventory.img`).entries[0];
      expect(inv.ns_per_id).toBe(true);
      expect(inv.root_ids).toMatchObject({ pid_ns_id: 1, net_ns_id: 2, ipc_ns_id: 3, uts_ns_id: 4, time_ns_id: 5, mnt_ns_id: 6, user_ns_id: 7, cgroup_ns_id: 8 });
      expect(ids).toMatchObject({ pid_ns_id: 1, net_ns_id: 2, ipc_ns_id: 9, uts_ns_id: 10, time_ns_id: 5, mnt_ns_id: 6, user_ns_id: 7, cgroup_ns_id: 8 });
      expect(critDecode(`${dir}/utsns-10.img`).entries).toEqual([{ nodename: 'ns-host', domainname: 'ns-dom' }]);
      const v = critDecode(`${dir}/ipcns-var-9.img`).entries[0];
      expect(v.msg_ctlmni).toBe(77);
      expect(v.sem_ctls).toHaveLength(4);
    });
  });
});

describe('namespaces not carried yet', () => {
  it('a task below the root in a UTS namespace of its own (nested) is refused by name (exit 4), in --check-only too; the tree runs on', () => {
    // a shell in criu's namespaces whose child unshares its UTS namespace
    const w = startWorkload('launch', ['/bin/sh', '-c', 'unshare --uts /bin/sleep 1000 & wait']);
    let kid = 0;
    for (let i = 0; i < 500 && !kid; i++) {
      kid = treePids(w.pid).find((p) => p !== w.pid && nsLink(p, 'uts') !== nsLink(w.pid, 'uts')) ?? 0;
      if (!kid) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    expect(kid).toBeGreaterThan(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('ns-nested'), '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`task ${kid} lives in nested namespaces \\(uts: neither criu's nor the root's\\)`));
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('ns-nested-check')]);
    expect(c.code).toBe(4);
    expect(c.stderr + c.stdout).toMatch(/nested namespaces/);
    expect(treePids(w.pid)).toEqual([w.pid, kid]);
    expect(readFileSync(`/proc/${kid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    killTreeAndWait(w.pid);
  });

  it('--check-only on a tree in UTS and IPC namespaces of its own finds nothing to refuse', () => {
    const w = startWorkload('nsuts', ['ns-host', 'ns-dom']);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('ns-check')]);
    expect(c.code, c.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killTreeAndWait(w.pid);
  });

  it('a tree in pid and mount namespaces of its own (unshare --pid --fork --mount-proc: a /proc of its own, stdio opened through the host\'s /dev) passes --check-only (carried now: restore/mntns.test.ts), the tree runs on', () => {
    const unshare = spawnSync('sh', ['-c', 'command -v unshare'], { encoding: 'utf8' });
    expect(unshare.status, 'unshare (util-linux) is needed').toBe(0);
    const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'sleep', '1000'], { stdio: 'ignore', detached: true });
    try {
      // the namespace's init: the child of unshare
      let init = 0;
      for (let i = 0; i < 200 && !init; i++) {
        init = treePids(child.pid!).find((p) => p !== child.pid) ?? 0;
        if (!init) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(init).toBeGreaterThan(0);
      const d = criu(['dump', '--check-only', '-t', String(init), '-D', tmp('ns-pid'), '--shell-job']);
      expect(d.code, d.stderr).toBe(0);
      expect(treePids(init)).toEqual([init]);
      expect(waitReaped(init, 200)).toBe(false);
    } finally {
      killTree(child.pid!);
      expect(waitGone(child.pid!)).toBe(true);
    }
  });
});
