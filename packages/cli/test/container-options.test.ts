import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { vethPairs } from '../src/criu/container-options.js';

describe('restore --veth-pair IN=OUT[@BRIDGE]', () => {
  it('each pair in the order given, split at its first =; the names are the restore\'s to check', () => {
    expect(vethPairs(['--veth-pair', 'eth0=vh0', '--external', 'veth[eth1]:vh1', '--veth-pair=eth2=vh2@br1'])).toEqual([
      { if_in: 'eth0', if_out: 'vh0' }, { if_in: 'eth2', if_out: 'vh2@br1' },
    ]);
    expect(vethPairs(['-D', 'x'])).toEqual([]);
  });

  it('a value without = is a usage error naming it', () => {
    try {
      vethPairs(['--veth-pair', 'eth0']);
      expect.unreachable();
    } catch (e) {
      expect(isCrtoolsError(e) && `${e.exitCode} ${e.message}`).toBe('2 invalid --veth-pair argument: eth0 (IN=OUT[@BRIDGE])');
    }
  });
});
