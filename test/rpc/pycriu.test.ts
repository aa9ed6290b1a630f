/**
 * Acceptance: Debian's pycriu (CRIU's own Python RPC client) drives crtools' `criu swrk`:
 * CHECK, VERSION, DUMP of a workload that checks its own memory, RESTORE (as pycriu does it, and
 * with rst_sibling: the root a child of the client), the workload's verdict after each.
 * Every process is cleaned up by pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criuBin } from '../lib/paths.js';
import { killAllStarted, killTree, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { peerDgrams, socketIno, startUnixPeer } from '../restore/unixext.js';

const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(path.dirname(new URL(import.meta.url).pathname), 'pycriu-driver.py');
const havePycriu = spawnSync(PYTHON, ['-c', 'import pycriu.criu, pycriu.rpc_pb2'], { stdio: 'ignore' }).status === 0;

afterAll(() => killAllStarted());

function pycriu(...args: string[]): Record<string, any> {
  return pycriuOf(criuBin, ...args);
}

/** pycriu against `criu` (a binary, or sk:PATH for a service socket) */
function pycriuOf(criu: string, ...args: string[]): Record<string, any> {
  const r = spawnSync(PYTHON, [DRIVER, criu, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`pycriu driver failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe.skipIf(!havePycriu)("pycriu (Debian's CRIU RPC client) against criu swrk", () => {
  it('CHECK succeeds and VERSION says 4.2', () => {
    expect(pycriu('check')).toEqual({ ok: true });
    expect(pycriu('version')).toEqual({ ok: true, major: 4, minor: 2 });
  });

  it('DUMP (not left running) then RESTORE: the workload finds its memory intact, twice (detached, then as the client\'s child)', () => {
    const w = startWorkload('pattern', ['8']);
    const img = tmp('pycriu');
    try {
      const d = pycriu('dump', img, String(w.pid));
      expect(d, JSON.stringify(d)).toEqual({ ok: true, restored: false });
      expect(existsSync(path.join(img, 'inventory.img'))).toBe(true);
      expect(existsSync(path.join(img, 'dump.log'))).toBe(true);
      expect(waitReaped(w.pid)).toBe(true);

      const r = pycriu('restore', img);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, pid: w.pid });
      expect(w.check(20_000)).toBe('check ok bad=0');
      killTree(w.pid);
      expect(waitReaped(w.pid)).toBe(true);

      const s = pycriu('restore', img, 'sibling');
      expect(s, JSON.stringify(s)).toMatchObject({ ok: true, pid: w.pid });
      expect(s.ppid).toBe(s.me); // rst_sibling: the restored root is the client's child, not criu's
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      killTree(w.pid);
    }
  });

  it('DUMP with ext_unix_sk and unix_sk_ino (a datagram socket connected to a peer outside), RESTORE with ext_unix_sk: connected to it again', () => {
    const { dir: peerDir, peer } = startUnixPeer();
    const w = startWorkload('unixext', ['dgram', peerDir]);
    try {
      const ino = socketIno(w.pid, Number(readdirSync(`/proc/${w.pid}/fd`).find((f) => readlinkSync(`/proc/${w.pid}/fd/${f}`).startsWith('socket:'))));
      // (without unix_sk_ino naming it, the socket's outside peer is refused by name)
      const noDir = tmp('pycriu-unixsk-no');
      const no = pycriu('dump', noDir, String(w.pid));
      expect(no.ok).toBe(false);
      expect(readFileSync(path.join(noDir, 'dump.log'), 'utf8')).toMatch(/outside the dumped tree, which is not supported without --ext-unix-sk/);
      expect(w.check()).toBe('check ok');
      const img = tmp('pycriu-unixsk');
      const d = pycriu('dump', img, String(w.pid), 'unixsk', String(ino));
      expect(d, JSON.stringify(d)).toEqual({ ok: true, restored: false });
      expect(waitReaped(w.pid)).toBe(true);
      const sent = peerDgrams(peer);
      const r = pycriu('restore', img, 'unixsk');
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, pid: w.pid });
      expect(w.check(20_000)).toBe('check ok');
      expect(peerDgrams(peer)).toBeGreaterThan(sent);
    } finally {
      killTree(w.pid);
      killTree(peer.pid);
    }
  });

  it('a failed DUMP is an exception carrying cr_errno, not a dropped connection', () => {
    const d = pycriu('dump', tmp('pycriu-fail'), '999999');
    expect(d.ok).toBe(false);
    expect(d.error).toMatch(/^DUMP failed: Error\(\d+\)/);
  });
});

describe.skipIf(!havePycriu || process.getuid?.() !== 0)("pycriu in service mode (use_sk) against criu service", () => {
  it('DUMP then RESTORE through a running service: the workload intact', () => {
    const dir = tmp('pycriu-service');
    chmodSync(dir, 0o755);
    const address = path.join(dir, 'criu.sock');
    const service = spawn(process.execPath, [criuBin, 'service', '--address', address], { stdio: ['ignore', 'ignore', 'inherit'] });
    const w = startWorkload('pattern', ['8']);
    const img = tmp('pycriu-service-img');
    try {
      for (let i = 0; i < 500 && !existsSync(address); i++) sleep(20);
      expect(pycriuOf(`sk:${address}`, 'version')).toEqual({ ok: true, major: 4, minor: 2 });
      const d = pycriuOf(`sk:${address}`, 'dump', img, String(w.pid));
      expect(d, JSON.stringify(d)).toEqual({ ok: true, restored: false });
      expect(waitReaped(w.pid)).toBe(true);
      const r = pycriuOf(`sk:${address}`, 'restore', img);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, pid: w.pid });
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      killTree(w.pid);
      if (service.pid !== undefined) {
        service.kill('SIGTERM');
        waitGone(service.pid, 5000);
      }
    }
  });
});
