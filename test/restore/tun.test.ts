/**
 * tun/tap devices of a tree's own network namespace (issue 17): a tun device held by the tree's
 * /dev/net/tun file and a persistent tap no file holds come back at their index with their flags,
 * owner, group, send buffer and address; the file is attached to its device again, so that a
 * packet written on it reaches the tree's socket and a datagram the socket sends comes out of it.
 * A device that was not persistent is not made so. A persistent device that is up and that no
 * file holds is refused by name (reading it would change it). Workload test/workloads/tun.c.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ExpectedChange } from '@crtools/inspect';
import { askVerdict, criu, killAllStarted, killTreeAndWait, startWorkload, tmp } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

/**
 * The file position of the tun file (fdinfo's pos: the bytes read and written so far), which no
 * call sets again (lseek on /dev/net/tun is ESPIPE) and the task cannot see (nor can CRIU 4.2 give it back).
 */
const TUN_POS: ExpectedChange = { path: /^tasks\[\d+\]\.fds\[3\]\.fdinfo$/, why: 'a tun file\'s position is set by no call (no lseek): the restored file starts at 0', keep: (v) => String(v).replace(/"pos: \d+"/, '') };

/** `ip -d link show DEV` inside the namespace of task pid */
function link(pid: number, dev: string): string {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-d', 'link', 'show', dev], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe('tun/tap devices in the tree\'s network namespace', () => {
  it('a tun device held by its file and a persistent tap round trip twice: flags, owner, group, address, packets both ways through the file, verdict ok', () => {
    roundTrip('tun', [], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      const tn0 = link(pid, 'tn0');
      expect(tn0).toMatch(/tun type tun\b/);
      expect(tn0).toMatch(/\buser 1234\b/);
      // (not persistent: it goes with its file, as before)
      expect(tn0).toMatch(/\bpersist off\b/);
      expect(tn0).toMatch(/\bpi off\b/);
      const tp1 = link(pid, 'tp1');
      expect(tp1).toMatch(/tun type tap\b/);
      expect(tp1).toMatch(/\bpersist on\b/);
      expect(tp1).toMatch(/\buser 4321 group 765\b/);
      expect(tp1).toMatch(/link\/ether 02:aa:bb:cc:dd:01/);
      expect(tp1).toMatch(/\bmtu 1400\b/);
    }, true, undefined, [TUN_POS]);
  });

  it('a persistent tap that is up and that no file holds is refused by name (exit 4); the tree runs on', () => {
    const w = startWorkload('tun', []);
    const up = spawnSync('nsenter', [`--net=/proc/${w.pid}/ns/net`, 'ip', 'link', 'set', 'tp1', 'up'], { encoding: 'utf8' });
    expect(up.status, up.stderr).toBe(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('tun-up')]);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(/persistent tun device tp1, up, which no file is attached to/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
    killTreeAndWait(w.pid);
  });
});
