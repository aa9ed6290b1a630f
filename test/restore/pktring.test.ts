/**
 * Packet sockets with mapped rings (workload pktring): TPACKET_V1 RX, V2 RX and TX in one
 * mapping, V3 RX, round-tripped twice and held to the state fingerprint; after each restore the
 * rings are where they were, fresh, and work (a frame out through the TX ring comes back from lo
 * into every RX ring). Likewise rings set up and never mapped, and rings mapped private. Rings whose state a restore cannot give back are refused by name (exit 4)
 * with the tree left running. CRIU 4.2 interop: criu-images.test.ts (pktring).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import { askVerdict, criu, critDecode, haveCrit, readState, startWorkload, tmp, waitGone } from '../dump/helpers.js';

/** VMA_AREA_REGULAR | VMA_AREA_SOCKET */
const SOCKET_AREA = 0x801;

describe('packet sockets with rings', () => {
  afterEach(killRestored);

  it('V1 RX, V2 RX+TX, V3 RX rings, round-tripped twice: mapped again at their addresses from their sockets, fresh, a frame sent through the TX ring comes back into every RX ring', () => {
    roundTrip('pktring', ['rings'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (dir, pid) => {
      if (!haveCrit) return;
      // Debian's crit decodes what we wrote: the rings' geometry, the areas naming their sockets
      const files = critDecode(path.join(dir, 'files.img')).entries as any[];
      const psk = files.filter((f) => f.type === 'PACKETSK').map((f) => f.psk).sort((a, b) => a.version - b.version);
      expect(psk.map((p) => p.version)).toEqual([0, 1, 2]);
      expect(psk[0].rx_ring).toEqual({ block_size: 4096, block_nr: 2, frame_size: 2048, frame_nr: 4, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      expect(psk[0].tx_ring).toBeUndefined();
      expect(psk[1].rx_ring).toEqual({ block_size: 4096, block_nr: 4, frame_size: 2048, frame_nr: 8, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      expect(psk[1].tx_ring).toEqual({ block_size: 4096, block_nr: 2, frame_size: 2048, frame_nr: 4, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      expect(psk[2].rx_ring).toEqual({ block_size: 8192, block_nr: 4, frame_size: 2048, frame_nr: 16, retire_tmo: 10, sizeof_priv: 0, features: 0 });
      // the BPF filter letting in only the workload's frames
      expect(psk.every((p) => p.opts.so_filter?.length === 4)).toBe(true);
      const mm = critDecode(path.join(dir, `mm-${pid}.img`)).entries[0];
      const areas = (mm.vmas as any[]).filter((v) => v.status === SOCKET_AREA);
      expect(areas).toHaveLength(3);
      const byId = new Map(psk.map((p) => [p.id, p]));
      for (const a of areas) {
        // shared, read-write, from offset 0, as long as the socket's rings (RX then TX)
        expect([a.flags, a.prot, a.pgoff, a.fdflags]).toEqual([1, 3, 0, 2]);
        const p = byId.get(a.shmid);
        expect(p).toBeDefined();
        const bytes = (r: any) => (r ? r.block_size * r.block_nr : 0);
        expect(a.end - a.start).toBe(bytes(p.rx_ring) + bytes(p.tx_ring));
      }
      // no pages of the rings in the pagemap (the rings are the kernel's)
      const pm = critDecode(path.join(dir, `pagemap-${pid}.img`)).entries.slice(1) as any[];
      for (const a of areas) expect(pm.some((e) => e.vaddr >= a.start && e.vaddr < a.end)).toBe(false);
    });
  });

  it('rings set up and not mapped, rings mapped private, round-tripped twice: set up again (and mapped again private at their address), fresh, a frame from lo lands in both RX rings', () => {
    roundTrip('pktring', ['unmapped'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (dir, pid) => {
      if (!haveCrit) return;
      // as CRIU 4.2 writes them (Debian's crit): both sockets' rings; one area, private, for p1's
      const psk = (critDecode(path.join(dir, 'files.img')).entries as any[]).filter((f) => f.type === 'PACKETSK').map((f) => f.psk).sort((a, b) => a.version - b.version);
      expect(psk.map((p) => p.version)).toEqual([0, 1]);
      expect(psk[0].rx_ring).toEqual({ block_size: 4096, block_nr: 2, frame_size: 2048, frame_nr: 4, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      expect(psk[1].rx_ring).toEqual({ block_size: 4096, block_nr: 4, frame_size: 2048, frame_nr: 8, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      expect(psk[1].tx_ring).toEqual({ block_size: 4096, block_nr: 2, frame_size: 2048, frame_nr: 4, retire_tmo: 0, sizeof_priv: 0, features: 0 });
      const areas = (critDecode(path.join(dir, `mm-${pid}.img`)).entries[0].vmas as any[]).filter((v) => v.status === SOCKET_AREA);
      expect(areas.map((a) => [a.flags, a.prot, a.pgoff, a.end - a.start, a.shmid])).toEqual([[2, 3, 0, 8192, psk[0].id]]);
      // no pages of the ring in the pagemap: the private mapping held none of the task's own
      const pm = critDecode(path.join(dir, `pagemap-${pid}.img`)).entries.slice(1) as any[];
      expect(pm.some((e) => e.vaddr >= areas[0].start && e.vaddr < areas[0].end)).toBe(false);
    });
  });

  for (const [mode, why] of [
    ['rxheld', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): packet socket with an RX ring with 1 of its 8 frames holding packets not yet read: not carried\n$/],
    ['txheld', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): packet socket with a TX ring with 1 of its 4 frames queued to be sent \(or failed to\): not carried\n$/],
    ['used', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): packet socket with an RX ring that has carried packets: the kernel's place in it cannot be set again\n$/],
    ['privwritten', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): packet socket with an RX and a TX ring mapped private at [0-9a-f]+-[0-9a-f]+ where the task wrote 1 pages \(copies of its own, which a restore mapping the rings again does not make\): not carried\n$/],
    ['v3open', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): packet socket with an RX ring with 1 packets in the block the kernel has open \(not yet handed to the task\): not carried\n$/],
  ] as const) {
    it(`${mode}: refused by name (exit 4, also by --check-only), the tree left running with its ring`, () => {
      const w = startWorkload('pktring', [mode]);
      expect(readState(w.state)).toMatch(/^ready pid=/);
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`pktring-${mode}`)]);
      expect(d.code).toBe(4);
      expect(d.stderr).toMatch(why);
      const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp(`pktring-${mode}-check`)]);
      expect(c.code).toBe(4);
      expect(c.stdout + c.stderr).toContain(d.stderr.replace(/^criu: /, '').trim());
      // still running, its ring still mapped
      expect(readState(w.state)).toMatch(/^ready pid=/);
      w.kill();
      expect(waitGone(w.pid)).toBe(true);
    });
  }
});
