/**
 * `criu service`: clients connect to a SOCK_SEQPACKET socket, each is served by a worker of its
 * own; a client that is not root may touch only its own processes. Every process (the service,
 * workloads) is cleaned up by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CriuClient } from '@crtools/rpc';
import { criuBin } from '../lib/paths.js';
import { alive, killAllStarted, killTree, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';

const NOBODY = 65534;
const AS_USER = path.join(path.dirname(new URL(import.meta.url).pathname), 'as-user.mjs');
const isRoot = process.getuid?.() === 0;

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function waitFor(p: string, ms = 10_000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(p)) return true;
    sleep(20);
  }
  return false;
}

/** One raw request as nobody; the answer. */
function asNobody(address: string, req: object): Record<string, any> {
  const r = spawnSync(process.execPath, [AS_USER, address, JSON.stringify(req)], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 60_000, cwd: '/' });
  if (r.status !== 0) throw new Error(`as-user failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe.skipIf(!isRoot)('criu service', () => {
  let service: ChildProcess;
  const dir = tmp('service');
  const address = path.join(dir, 'criu.sock');
  beforeAll(() => {
    chmodSync(dir, 0o755);
    service = spawn(process.execPath, [criuBin, 'service', '--address', address, '--pidfile', path.join(dir, 'pid')], { stdio: ['ignore', 'ignore', 'inherit'] });
    expect(waitFor(address)).toBe(true);
  });
  afterAll(() => {
    if (service.pid) killTree(service.pid);
    killAllStarted();
  });

  it('listens for everyone, writes its pid; VERSION and CHECK over the socket', async () => {
    expect(readFileSync(path.join(dir, 'pid'), 'utf8')).toBe(String(service.pid));
    const c = new CriuClient({ address });
    expect(await c.version()).toMatchObject({ major: 4, minor: 2 });
    await expect(c.check()).resolves.toBeUndefined();
  });

  it('DUMP and RESTORE through the service: the workload intact; rst_sibling is swrk\'s only', async () => {
    const c = new CriuClient({ address });
    const w = startWorkload('pattern', ['4']);
    const img = tmp('service-img');
    try {
      expect(await c.dump({ imagesDir: img, pid: w.pid })).toEqual({ restored: false });
      expect(waitReaped(w.pid)).toBe(true);
      await expect(c.restore({ imagesDir: img, rst_sibling: true })).rejects.toThrow(/rst_sibling: only criu swrk/);
      expect(await c.restore({ imagesDir: img })).toEqual({ pid: w.pid });
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      killTree(w.pid);
    }
  });

  it('a client that is not root may not dump or restore what is not its own', () => {
    const w = startWorkload('pattern', ['2']);
    const mine = tmp('service-nobody');
    chownSync(mine, NOBODY, NOBODY);
    const rootImg = tmp('service-root-img');
    chmodSync(rootImg, 0o755);
    try {
      const d = asNobody(address, { type: 'DUMP', opts: { imagesDir: mine, pid: w.pid, leave_running: true } });
      expect(d).toMatchObject({ type: 'DUMP', success: false, cr_errno: 1 });
      expect(d.cr_errmsg).toMatch(new RegExp(`^task ${w.pid} is not the client's \\(uid ${NOBODY}, gid ${NOBODY}\\)`));
      // nor into a directory that is not its own
      const o = asNobody(address, { type: 'DUMP', opts: { imagesDir: rootImg, pid: w.pid, leave_running: true } });
      expect(o.cr_errmsg).toMatch(/^images directory: the directory belongs to uid 0/);
      expect(w.check(20_000)).toBe('check ok bad=0');
      // root's checkpoint restored by nobody: refused before anything runs
      spawnSync(process.execPath, [criuBin, 'dump', '-t', String(w.pid), '-D', mine, '-R'], { stdio: 'ignore' });
      const r = asNobody(address, { type: 'RESTORE', opts: { imagesDir: mine } });
      expect(r).toMatchObject({ type: 'RESTORE', success: false, cr_errno: 1 });
      expect(r.cr_errmsg).toMatch(new RegExp(`^the checkpoint's task ${w.pid} ran as uid 0`));
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });

  it('-d: detaches once listening; the pidfile names the service, which stops on SIGTERM and removes its socket', async () => {
    const d = tmp('service-d');
    const addr = path.join(d, 's.sock');
    const r = spawnSync(process.execPath, [criuBin, 'service', '-d', '--address', addr, '--pidfile', path.join(d, 'pid')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const pid = Number(readFileSync(path.join(d, 'pid'), 'utf8'));
    try {
      expect(alive(pid)).toBe(true);
      expect(await new CriuClient({ address: addr }).version()).toMatchObject({ major: 4 });
      // workers wait ahead of their clients (two, each replaced when taken)
      const spares = childrenOf(pid);
      expect(spares.length).toBeGreaterThanOrEqual(2);
      process.kill(pid, 'SIGTERM');
      expect(waitGone(pid, 5000)).toBe(true);
      expect(existsSync(addr)).toBe(false);
      // and none outlives the service (a rehearsing one finishes its rehearsal first)
      for (const w of spares) expect(waitGone(w, 20_000), `spare worker ${w}`).toBe(true);
    } finally {
      killTree(pid);
    }
  });

  it('-W DIR: the socket, the pidfile and the log are in DIR (relative names, as CRIU\'s service works in its work dir); --status-fd says when it listens', async () => {
    const d = tmp('service-w');
    // as CRIU's others/rpc starts its service
    const r = spawnSync(process.execPath, [criuBin, 'service', '-v4', '-W', d, '--address', 'criu_service.socket', '-d', '--pidfile', 'pidfile', '-o', 'service.log', '--status-fd', '3'], {
      encoding: 'utf8', timeout: 20_000, cwd: '/', stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    expect(r.status, r.stderr).toBe(0);
    expect(Buffer.from(r.output[3] as string, 'utf8')).toEqual(Buffer.from([0]));
    const pid = Number(readFileSync(path.join(d, 'pidfile'), 'utf8'));
    try {
      expect(alive(pid)).toBe(true);
      expect(readFileSync(path.join(d, 'service.log'), 'utf8')).toMatch(/The service socket is bound to criu_service\.socket/);
      expect(await new CriuClient({ address: path.join(d, 'criu_service.socket') }).version()).toMatchObject({ major: 4 });
      process.kill(pid, 'SIGTERM');
      expect(waitGone(pid, 5000)).toBe(true);
      expect(existsSync(path.join(d, 'criu_service.socket'))).toBe(false);
    } finally {
      killTree(pid);
    }
    // a work dir that is not there: one line, exit 1, no socket anywhere
    const bad = spawnSync(process.execPath, [criuBin, 'service', '-W', path.join(d, 'nope'), '--address', 'x.sock'], { encoding: 'utf8', timeout: 20_000, cwd: d });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/can't change directory to .*nope: ENOENT/);
    expect(existsSync(path.join(d, 'x.sock'))).toBe(false);
  });
});
