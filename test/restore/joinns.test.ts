/**
 * --join-ns (criu.8; crtools issue 17): a tree dumped in criu's namespaces is restored inside the
 * network, UTS and IPC namespaces of another process (a holder made by unshare, its hostname set
 * inside), given by pid or by namespace file: the restored task lives in exactly those and goes
 * on (its verdict); the kinds not carried are refused by name (exit 4), pid as CRIU refuses it,
 * a namespace that cannot be opened or a conflict with --empty-ns is a usage error (exit 1), and
 * none of these leaves a process behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alive, criu, killAllStarted, killTree, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
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

let held: number | undefined;
afterEach(() => {
  killRestored();
  killAllStarted();
});
afterAll(() => {
  if (held !== undefined && alive(held)) killTree(held);
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

  it('refused before anything is made: time (exit 4, not yet), pid (exit 1, as CRIU), a namespace that is not there, and --empty-ns net beside net (exit 1)', () => {
    held ??= holder();
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('joinns-bad');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir]).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const cases: [string[], number, string][] = [
      [['--join-ns', `time:${held}`], 4, `restore: --join-ns time:${held}: joining a time namespace is not supported by crtools yet (carried: net, uts, ipc)`],
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
