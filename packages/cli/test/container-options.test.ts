import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { vethPairs } from '../src/criu/container-options.js';

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isCrtoolsError(e)) return `${e.exitCode} ${e.message}`;
    throw e;
  }
  return 'no error';
}

describe('restore veth peers: --veth-pair IN=OUT[@BRIDGE], --external veth[IN]:OUT[@BRIDGE]', () => {
  it('both forms make one list, --veth-pair first; mounts and other externals are not its', () => {
    expect(vethPairs(['--veth-pair', 'eth0=vh0', '--external', 'mnt[a]:/x', '--external=veth[eth1]:vh1@br0', '--veth-pair=eth2=vh2@br1'])).toEqual([
      { if_in: 'eth0', if_out: 'vh0' }, { if_in: 'eth2', if_out: 'vh2@br1' }, { if_in: 'eth1', if_out: 'vh1@br0' },
    ]);
    expect(vethPairs(['-D', 'x'])).toEqual([]);
  });

  it('a malformed pair or a device name the kernel would not take is a usage error (exit 2) naming the argument', () => {
    for (const [args, msg] of [
      [['--veth-pair', 'eth0'], /^2 invalid --veth-pair \(IN=OUT\[@BRIDGE\]\) argument: eth0$/],
      [['--veth-pair', '=vh0'], /argument: =vh0$/],
      [['--veth-pair', 'eth0=a-name-longer-than-15'], /argument: eth0=a-name-longer-than-15$/],
      [['--veth-pair', 'eth0=vh0@'], /argument: eth0=vh0@$/],
      [['--veth-pair', 'eth0=vh0@br@x'], /argument: eth0=vh0@br@x$/],
      [['--external', 'veth[eth0]'], /^2 invalid --external \(veth\[IN\]:OUT\[@BRIDGE\]\) argument: veth\[eth0\]$/],
      [['--external', 'veth[]:vh0'], /argument: veth\[\]:vh0$/],
    ] as const) expect(usage(() => vethPairs([...args])), args.join(' ')).toMatch(msg);
  });
});
