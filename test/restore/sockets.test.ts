/**
 * Sockets that are neither unix nor TCP connections: connected UDP and UDP-lite (IPv4, IPv6,
 * v4-mapped; the peer in the tree or outside), ping sockets, raw sockets, a packet socket and a
 * route netlink socket (workload othersocks), round-tripped twice and held to the state
 * fingerprint, each made to work after the restore; what stays refused is refused by name
 * (exit 4) with the tree left running. CRIU 4.2 interop for these is in criu-images.test.ts.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import { askVerdict, criu, critDecode, haveCrit, ourCritDecode, startWorkload, tmp, waitGone, type Workload } from '../dump/helpers.js';
import { allowRootPing, startEcho } from './othersocks.js';

describe('other sockets: UDP, UDP-lite, ping, raw, packet, netlink', () => {
  let echo: Workload;
  let port = 0;
  let putBack = () => {};
  beforeAll(() => {
    putBack = allowRootPing();
    ({ echo, port } = startEcho());
  });
  afterAll(() => {
    echo?.kill();
    if (echo) expect(waitGone(echo.pid)).toBe(true);
    putBack();
  });
  afterEach(killRestored);

  it('one of each, round-tripped twice: the pairs talk, the echo server answers through both outside ends, two shut-down ends stay shut down, both pings get replies, the packet socket gets its frame back from lo (and both SOCK_PACKET ones, each bound as it was), netlink answers RTM_GETLINK', () => {
    roundTrip('othersocks', ['all', String(port)], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (dir) => {
      if (!haveCrit) return;
      // Debian's crit decodes what we wrote; the kinds' records are there
      const files = critDecode(path.join(dir, 'files.img')).entries as any[];
      const isk = files.filter((f) => f.type === 'INETSK').map((f) => f.isk);
      // UDP pairs (v4, v6), the UDP-lite pair, 4 outside ends, 2 pings, 3 raw
      expect(isk).toHaveLength(15);
      const connected = isk.filter((s) => s.state === 1);
      // every pair end, the outside ends, the IPv4 ping and the raw UDP socket
      expect(connected).toHaveLength(12);
      expect(isk.map((s) => s.shutdown).filter(Boolean).sort()).toEqual(['READ', 'WRITE']);
      expect(isk.filter((s) => s.proto === 136)).toHaveLength(2);
      expect(isk.find((s) => s.type === 3 && s.proto === 17).ip_opts.raw.hdrincl).toBe(true);
      const nl = files.find((f) => f.type === 'NETLINKSK').nlsk;
      // groups 23 and 34, as bitmap words
      expect(nl.groups).toEqual([1 << 22, 2]);
      // NETLINK_EXT_ACK (11), GET_STRICT_CHK (12) and NO_ENOBUFS (5) in crtools' nl_sockopts: a
      // field Debian's crit skips, ours shows
      expect(nl.nl_sockopts).toBeUndefined();
      const ours = ourCritDecode(path.join(dir, 'files.img')).entries.find((f: any) => f.type === 'NETLINKSK').nlsk;
      expect(ours.nl_sockopts).toBe(0x1820);
      const pks = files.filter((f) => f.type === 'PACKETSK').map((f) => f.psk);
      // the SOCK_PACKET ones (type 10): bound to lo (index 1) and not bound, with their protocol
      const spkt = pks.filter((p) => p.type === 10);
      expect(spkt.map((p) => p.ifindex).sort()).toEqual([0, 1]);
      expect(spkt.every((p) => p.protocol === pks.find((q) => q.type !== 10).protocol)).toBe(true);
      const pk = pks.find((p) => p.type !== 10);
      // group 77, by hash, with rollover (PACKET_FANOUT's value: sock_diag leaves the flags out)
      expect(pk.fanout).toBe(77 | (0x1000 << 16));
      expect(pk.mclist).toHaveLength(1);
      expect(pk.aux_data).toBe(true);
      expect(pk.version).toBe(1);
    });
  });

  it('ring: a packet socket with an RX ring it does not map (carried since the rings are read without the task) round trips twice, verdict ok', () => {
    roundTrip('othersocks', ['ring'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
    });
  });

  for (const [mode, why] of [
    ['udpqueue', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): UDP socket with data queued to be read \(\d+ bytes of receive buffer\): not carried\n$/],
    ['nlqueue', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): netlink socket with messages queued to be read \(\d+ bytes of receive buffer\): not carried\n$/],
    ['nldgram', /^criu: task \d+ fd \d+ \(socket:\[\d+\]\): netlink socket of type 2 \(not SOCK_RAW\): netlinksk.img has no field for its type\n$/],
  ] as const) {
    it(`${mode}: refused by name (exit 4, also by --check-only), the tree left running with what it holds`, () => {
      const w = startWorkload('othersocks', [mode]);
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`sockets-${mode}`)]);
      expect(d.code).toBe(4);
      expect(d.stderr).toMatch(why);
      const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp(`sockets-${mode}-check`)]);
      expect(c.code).toBe(4);
      expect(c.stdout + c.stderr).toContain(d.stderr.replace(/^criu: /, '').trim());
      expect(w.check()).toBe('check ok');
      w.kill();
      expect(waitGone(w.pid)).toBe(true);
    });
  }
});
