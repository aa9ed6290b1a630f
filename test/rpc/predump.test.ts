/**
 * Incremental dumps and page servers over RPC: PRE_DUMP (a chain on one connection, as CRIU's
 * loop takes it), SINGLE_PRE_DUMP, PAGE_SERVER / PAGE_SERVER_CHLD (ps.pid and ps.port in the
 * answer), FEATURE_CHECK's mem_track; through @crtools/rpc's CriuClient and Debian's pycriu.
 * Every process is killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CriuClient } from '@crtools/rpc';
import { criuBin } from '../lib/paths.js';
import { alive, askVerdict, killAllStarted, killTree, killTreeAndWait, ourCritDecode, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored } from '../restore/roundtrip.js';

const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(path.dirname(new URL(import.meta.url).pathname), 'migrate-driver.py');
const havePycriu = spawnSync(PYTHON, ['-c', 'import pycriu.criu, pycriu.rpc_pb2'], { stdio: 'ignore' }).status === 0;
// (kerndat's dirty-track method, as `criu check --feature mem_dirty_track` says it)
const canTrack = spawnSync(process.execPath, [criuBin, 'check', '--feature', 'mem_dirty_track'], { stdio: 'ignore' }).status === 0;

const client = new CriuClient({ criu: criuBin });
const servers: number[] = [];
afterEach(() => {
  killRestored();
  killAllStarted();
  for (const p of servers.splice(0)) killTree(p);
});

function pycriu(...args: string[]): Record<string, any> {
  const r = spawnSync(PYTHON, [DRIVER, criuBin, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`pycriu driver failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function skipped(dir: string): number {
  return Number(ourCritDecode(path.join(dir, 'stats-dump')).entries[0].dump.pages_skipped_parent);
}

function dirty(pid: number): void {
  process.kill(pid, 'SIGUSR2');
  sleep(150);
}

function kill(pid: number): void {
  killTreeAndWait(pid);
}

describe.skipIf(!canTrack)('PRE_DUMP, PAGE_SERVER over RPC (CriuClient)', () => {
  it('FEATURE_CHECK answers mem_track from kerndat', async () => {
    expect(await client.featureCheck()).toMatchObject({ mem_track: true, pidfd_store: false });
  });

  it('a chain of 2 PRE_DUMPs and the DUMP on one connection, then RESTORE: the verdict intact, the final dump skipped what the chain holds', async () => {
    const w = startWorkload('dirtier', ['8', '0', '0']);
    const base = tmp('rpc-predump');
    const [p1, p2, fin] = ['p1', 'p2', 'final'].map((d) => path.join(base, d));
    for (const d of [p1, p2, fin]) spawnSync('mkdir', ['-p', d!]);
    const s = client.session();
    try {
      await s.preDump({ imagesDir: p1!, pid: w.pid, log_file: 'pre-dump.log', log_level: 4 });
      expect(alive(w.pid)).toBe(true);
      dirty(w.pid);
      await s.preDump({ imagesDir: p2!, pid: w.pid, parent_img: '../p1', pre_dump_mode: 'VM_READ', log_file: 'pre-dump.log', log_level: 4 });
      expect(readlinkSync(path.join(p2!, 'parent'))).toBe('../p1');
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      dirty(w.pid);
      expect(await s.dump({ imagesDir: fin!, pid: w.pid, parent_img: '../p2', track_mem: true, log_file: 'dump.log', log_level: 4 })).toEqual({ restored: false });
    } finally {
      await s.close();
    }
    expect(skipped(p2!)).toBeGreaterThan(0);
    expect(skipped(fin!)).toBeGreaterThan(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = await client.restore({ imagesDir: fin!, log_file: 'restore.log', log_level: 4 });
    expect(r.pid).toBe(w.pid);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok bad=0/);
    kill(w.pid);
  }, 300_000);

  it('SINGLE_PRE_DUMP, and a page server started by PAGE_SERVER (port picked by the kernel) receiving the DUMP; a request after a PRE_DUMP that is neither PRE_DUMP nor DUMP is refused', async () => {
    const w = startWorkload('pattern', ['8']);
    const base = tmp('rpc-ps');
    const [p1, p2, fin] = ['p1', 'p2', 'final'].map((d) => path.join(base, d));
    for (const d of [p1, p2, fin]) spawnSync('mkdir', ['-p', d!]);
    await client.preDump({ imagesDir: p1!, pid: w.pid, log_file: 'pre-dump.log' });
    expect(existsSync(path.join(p1!, `pagemap-${w.pid}.img`))).toBe(true);
    // PRE_DUMP then VERSION on one connection: "Bad req seq", as CRIU
    const s = client.session();
    try {
      await s.preDump({ imagesDir: p2!, pid: w.pid, parent_img: '../p1', log_file: 'pre-dump.log' });
      const v = await s.request({ type: 'VERSION' });
      expect(v.success).toBe(false);
      expect(v.cr_errmsg).toMatch(/Bad req seq/);
    } finally {
      await s.close();
    }
    const ps = await client.pageServer({ imagesDir: fin!, ps: { port: 0 }, parent_img: '../p2', log_file: 'page-server.log', log_level: 4 });
    servers.push(ps.pid);
    expect(ps.pid).toBeGreaterThan(0);
    expect(ps.port).toBeGreaterThan(0);
    expect(alive(ps.pid)).toBe(true);
    await client.dump({ imagesDir: fin!, pid: w.pid, parent_img: '../p2', track_mem: true, ps: { address: '127.0.0.1', port: ps.port }, log_file: 'dump.log' });
    expect(skipped(fin!)).toBeGreaterThan(0);
    expect(waitGone(ps.pid, 10_000)).toBe(true);
    expect(waitReaped(w.pid)).toBe(true);
    expect(existsSync(path.join(fin!, `pagemap-${w.pid}.img`))).toBe(true);
    const r = await client.restore({ imagesDir: fin!, log_file: 'restore.log' });
    expect(r.pid).toBe(w.pid);
    expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok bad=0');
    kill(w.pid);
  }, 300_000);
});

describe.skipIf(!havePycriu || !canTrack)("pycriu (Debian's CRIU RPC client): pre-dumps and a page server", () => {
  it('FEATURE_CHECK mem_track; PRE_DUMP twice then DUMP with parent_img and track_mem over a page server started by PAGE_SERVER_CHLD (parent linked); restored with the verdict intact', () => {
    expect(pycriu('feature-check')).toEqual({ ok: true, mem_track: true });
    const w = startWorkload('dirtier', ['8', '0', '0']);
    const base = tmp('pycriu-predump');
    const dirs = ['p1', 'p2', 'final'].map((d) => path.join(base, d));
    for (const d of dirs) spawnSync('mkdir', ['-p', d]);
    expect(pycriu('pre-dump', dirs[0]!, String(w.pid))).toEqual({ ok: true });
    dirty(w.pid);
    expect(pycriu('pre-dump', dirs[1]!, String(w.pid), '../p1')).toEqual({ ok: true });
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
    dirty(w.pid);
    // the final round's pages go to a page server (into the same directory), the chain linked there too
    const ps = pycriu('page-server-chld', dirs[2]!, '../p2');
    expect(ps.ok, JSON.stringify(ps)).toBe(true);
    servers.push(ps.pid);
    expect(ps.port).toBeGreaterThan(0);
    const d = pycriu('dump', dirs[2]!, String(w.pid), '../p2', '127.0.0.1', String(ps.port));
    expect(d, JSON.stringify(d)).toEqual({ ok: true, restored: false });
    expect(waitGone(ps.pid, 10_000)).toBe(true);
    expect(readlinkSync(path.join(dirs[2]!, 'parent'))).toBe('../p2');
    expect(skipped(dirs[2]!)).toBeGreaterThan(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = spawnSync(process.execPath, [criuBin, 'restore', '-D', dirs[2]!, '-d'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok bad=0/);
    kill(w.pid);
  }, 300_000);
});
