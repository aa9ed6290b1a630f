import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KERNDAT_PROBE_REVISION, kernelIdentity, loadKerndat, readCache, writeCache } from '../src/index.js';
import { machineDoc } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kerndat-cache-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kerndat cache', () => {
  it('is reused while release and boot id match, and written atomically', () => {
    const path = join(dir, 'sub', 'kerndat.json');
    const first = loadKerndat({ cachePath: path });
    expect(first.cached).toBe(false);
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['kerndat.json']); // no temporary left behind
    const second = loadKerndat({ cachePath: path });
    expect(second.cached).toBe(true);
    expect(second.kerndat).toEqual(first.kerndat);
    const fresh = loadKerndat({ cachePath: path, noCache: true });
    expect(fresh.cached).toBe(false);
    expect(fresh.kerndat.probed_at >= first.kerndat.probed_at).toBe(true);
  });

  it('is ignored for another boot or release, or when corrupt', () => {
    const id = { ...kernelIdentity(), probe_revision: KERNDAT_PROBE_REVISION };
    const path = join(dir, 'other.json');
    writeCache(path, { ...machineDoc(), ...id });
    expect(readCache(path)?.boot_id).toBe(id.boot_id);
    writeCache(path, { ...machineDoc(), ...id, boot_id: '00000000-0000-0000-0000-000000000000' });
    expect(readCache(path)).toBeUndefined();
    writeCache(path, { ...machineDoc(), ...id, release: '2.6.32' });
    expect(readCache(path)).toBeUndefined();
    // written by an older crtools that lacked some probe: stale
    writeCache(path, { ...machineDoc(), ...id, probes: machineDoc().probes.slice(1) });
    expect(readCache(path)).toBeUndefined();
    // or by one whose probes answered differently (an older probe revision, or none)
    writeCache(path, { ...machineDoc(), ...id, probe_revision: KERNDAT_PROBE_REVISION - 1 });
    expect(readCache(path)).toBeUndefined();
    writeCache(path, { ...machineDoc(), ...id, probe_revision: undefined });
    expect(readCache(path)).toBeUndefined();
    // a probe failed when it was written: probed again
    writeCache(path, { ...machineDoc(), ...id, errors: { autofs: 'autofs could not be mounted for the test (child exit 13)' } });
    expect(readCache(path)).toBeUndefined();
    writeFileSync(path, '{"half": ');
    expect(readCache(path)).toBeUndefined();
    expect(readCache(join(dir, 'absent.json'))).toBeUndefined();
    // a corrupt cache is replaced by a fresh probe
    const r = loadKerndat({ cachePath: path });
    expect(r.cached).toBe(false);
    expect(JSON.parse(readFileSync(path, 'utf8')).boot_id).toBe(id.boot_id);
  });
});
