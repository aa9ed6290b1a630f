/**
 * The dumper runs code in its tracees up to an int3 trap. Forcing the SIGTRAP of a trap on a
 * thread that blocks or ignores it, the kernel unblocks it and resets its action to the
 * default: the dump must keep SIGTRAP open only while it runs code, and put back the mask and
 * an ignored action, so that neither the images nor a tree left running (-R) see a change.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, NOT_CARRIED_YET } from '@crtools/inspect';
import { existsSync, readFileSync } from 'node:fs';
import { alive, askVerdict, criu, killAllStarted, startWorkload, tmp } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(() => {
  killRestored();
  killAllStarted();
});

describe('SIGTRAP blocked by every thread, ignored or handled', () => {
  for (const mode of ['ign', 'handler']) {
    it(`${mode}: dump -R leaves the tree as it was (masks and the action), twice`, () => {
      const w = startWorkload('sigtrap', [mode]);
      const before = fingerprint(w.pid);
      for (let round = 0; round < 2; round++) {
        const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`sigtrap-${mode}-R`), '-R']);
        expect(d.stderr).toBe('');
        expect(d.code).toBe(0);
        expect(compareFingerprints(before, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
        expect(askVerdict(w.state, w.pid)).toBe('check ok action=1 main=1 thread=1');
      }
    });

    it(`${mode}: round-tripped twice, masks and the action come back`, () =>
      roundTrip('sigtrap', [mode], (pid, state) => expect(askVerdict(state, pid)).toBe('check ok action=1 main=1 thread=1')));
  }
});

describe('a blocked SIGTRAP pending (CRIU zdtm sigtrap)', () => {
  // the dumper's code runs with SIGTRAP open: a pending one would be delivered there and lost
  for (const mode of ['pending', 'tpending']) {
    it(`${mode === 'pending' ? 'sent to the process' : 'sent to a thread'}: the dump refuses it by name (exit 4), the signal still pending, the tree as it was`, () => {
      const w = startWorkload('sigtrap', [mode]);
      const before = fingerprint(w.pid);
      const dir = tmp(`sigtrap-${mode}`);
      const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
      expect(d.code).toBe(4);
      expect(d.stderr).toMatch(/^criu: task \d+: a SIGTRAP is pending \(blocked\), which the dumper's own traps would take: not supported\n$/);
      expect(alive(w.pid)).toBe(true);
      expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
      expect(existsSync(`${dir}/core-${w.pid}.img`)).toBe(false);
      expect(compareFingerprints(before, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(askVerdict(w.state, w.pid)).toBe('check ok action=1 main=1 thread=1');
    });
  }
});
