import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeDev, encodeKdev } from '@crtools/images/facts';
import { irmapLookup } from './irmap.js';

describe('irmapLookup (--force-irmap)', () => {
  const root = mkdtempSync(join(tmpdir(), 'files-irmap-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'etc/deep/er'), { recursive: true });
  mkdirSync(join(root, 'scan/a'), { recursive: true });
  writeFileSync(join(root, 'etc/deep/er/f'), 'x');
  writeFileSync(join(root, 'scan/a/g'), 'y');
  writeFileSync(join(root, 'top'), 'z');
  mkdirSync(join(root, 'other/x'), { recursive: true });
  writeFileSync(join(root, 'other/x/h'), 'w');
  const key = (p: string) => {
    const st = statSync(join(root, p), { bigint: true });
    const d = decodeDev(st.dev);
    return [Number(encodeKdev(d.major, d.minor)), st.ino] as const;
  };

  it('finds a file by device (kernel encoding) and inode: under a scan path, under /etc (searched whole), directly in / (not below)', () => {
    const look = irmapLookup(root, ['/scan']);
    expect(look(...key('scan/a/g'))).toBe('/scan/a/g');
    expect(look(...key('etc/deep/er/f'))).toBe('/etc/deep/er/f');
    expect(look(...key('top'))).toBe('/top');
    expect(look(...key('other'))).toBe('/other');
    // below / but in none of the places searched whole
    expect(look(...key('other/x/h'))).toBeUndefined();
  });
});
