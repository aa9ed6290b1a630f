import { describe, expect, it } from 'vitest';
import { fsEnabled, FSTYPE, FSTYPE_AUTO, fstypeName, MOUNTED_ANEW } from '../src/facts/index.js';

describe('mount facts', () => {
  it('every file system mounted anew has a CRIU code; fuse, autofs, aufs and simfs are not mounted anew', () => {
    for (const fs of MOUNTED_ANEW) expect(FSTYPE[fs], fs).toBeGreaterThan(0);
    for (const fs of ['fuse', 'autofs', 'aufs', 'simfs']) expect(MOUNTED_ANEW.has(fs)).toBe(false);
    expect(FSTYPE['overlay']).toBe(17);
    expect(FSTYPE['cgroup2']).toBe(23);
  });

  it('AUTO is no file system\'s code (its name is fsname)', () => {
    expect(fstypeName(FSTYPE_AUTO)).toBeUndefined();
    expect(FSTYPE_AUTO).toBe(16);
  });

  it('--enable-fs: names joined by "," over repeated options, "all" for every one', () => {
    expect(fsEnabled([], 'ramfs')).toBe(false);
    expect(fsEnabled(['ext4,ramfs'], 'ramfs')).toBe(true);
    expect(fsEnabled(['ext4', 'xfs'], 'xfs')).toBe(true);
    expect(fsEnabled(['ext4'], 'ext')).toBe(false);
    expect(fsEnabled(['all'], 'hugetlbfs')).toBe(true);
  });
});
