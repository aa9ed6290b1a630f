import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseVdsoElf, probeKerndat, PROBES, kernelIdentity } from '../src/index.js';

/** The filesystem types this kernel knows now (/proc/filesystems). */
function kernelKnows(fs: string): boolean {
  return readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.split('\t')[1] === fs);
}

function children(): string {
  return readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim();
}

describe('probes on the running kernel', () => {
  const before = { fds: readdirSync('/proc/self/fd').length, kids: children() };
  const k = probeKerndat();

  it('every probe answers, and leaves no fd or child behind', () => {
    expect(k.errors).toEqual({});
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before.fds);
    expect(children()).toBe(before.kids);
    expect(PROBES.length).toBeGreaterThan(35);
    expect(k.probes).toEqual(PROBES.map(([n]) => n));
    expect(k.release).toBe(kernelIdentity().release);
    expect(k.boot_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('stack guard gap: measured, and consistent with the boolean CRIU uses', () => {
    expect(typeof k.stack_guard_gap).toBe('number');
    expect(k.stack_guard_gap_hidden).toBe(k.stack_guard_gap !== 0);
    // 4.12+ (this machine runs 6.18): maps shows the real start, CRIU's flag is false
    expect(k.stack_guard_gap).toBe(0);
    expect(k.stack_guard_gap_hidden).toBe(false);
    expect([0, 4096, 1 << 20]).toContain(k.stack_guard_gap);
  });

  it('memory facts', () => {
    expect(k.page_size).toBe(4096);
    expect(k.task_size! >= 0x7ffffffff000n).toBe(true);
    expect(k.mmap_min_addr).toBe(BigInt(readFileSync('/proc/sys/vm/mmap_min_addr', 'utf8').trim()));
    expect(k.pmap).toBe('PM_FULL'); // root sees PFNs
    expect(typeof k.has_zero_page).toBe('boolean');
    if (k.has_zero_page) expect(k.zero_page_pfn! > 0n).toBe(true);
    else expect(k.zero_page_pfn).toBeUndefined();
  });

  it('zero page: given only when read faults really share one page, checked here independently', () => {
    // read-fault pages of two separate mappings (not the probe's way): same PFN iff a shared zero page
    const script = [
      'import ctypes, mmap, os, struct',
      // private: python's default is MAP_SHARED, shmem, whose read faults never map the zero page
      'm = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)',
      'm[0]',
      'a = ctypes.addressof(ctypes.c_char.from_buffer(m))',
      "e = struct.unpack('Q', os.pread(os.open('/proc/self/pagemap', os.O_RDONLY), 8, a // 4096 * 8))[0]",
      'print(e & ((1 << 55) - 1) if e >> 63 else 0)',
    ].join('\n');
    const pfnOfReadPage = () => BigInt(spawnSync('python3', ['-c', script], { encoding: 'utf8' }).stdout.trim());
    const [a, b] = [pfnOfReadPage(), pfnOfReadPage()];
    expect(k.has_zero_page).toBe(a !== 0n && a === b);
    if (k.has_zero_page) expect(k.zero_page_pfn).toBe(a);
  });

  it('vDSO area: mappings in order, sizes, symbols that resolve to the same code', () => {
    const v = k.vdso!;
    const maps = readFileSync('/proc/self/maps', 'utf8');
    for (const a of v.areas) expect(maps).toContain(a.name);
    const idx = v.order.indexOf('[vdso]');
    expect(idx).toBeGreaterThan(0);
    for (let i = 1; i < v.areas.length; i++) expect(v.areas[i]!.start >= v.areas[i - 1]!.end).toBe(true);
    expect(v.vdso_size > 0n && v.vdso_size % 4096n === 0n).toBe(true);
    expect(v.elf_ok).toBe(true);
    for (const s of ['__vdso_clock_gettime', '__vdso_gettimeofday', '__vdso_time', '__vdso_getcpu', '__vdso_clock_getres']) {
      expect(v.symbols[s], s).toBeTypeOf('bigint');
      expect(v.symbols[s]! < v.vdso_size).toBe(true);
    }
    expect(v.symbols.clock_gettime).toBe(v.symbols.__vdso_clock_gettime);
  });

  it('the vDSO ELF parser refuses garbage without throwing', () => {
    expect(parseVdsoElf(Buffer.alloc(0)).elf_ok).toBe(false);
    expect(parseVdsoElf(Buffer.from('not an elf at all, just some bytes.................................')).elf_ok).toBe(false);
    const fake = Buffer.alloc(128);
    fake.writeUInt32BE(0x7f454c46, 0);
    fake[4] = 2;
    fake[5] = 1;
    fake.writeUInt16LE(3, 16);
    fake.writeUInt16LE(62, 18);
    fake.writeBigUInt64LE(0xffffn, 40); // section headers past the end
    fake.writeUInt16LE(5, 60);
    expect(parseVdsoElf(fake)).toEqual({ elf_ok: false, symbols: {} });
  });

  it('probes that fork: ptrace abilities, clone3 set_tid, special-mapping mremap', () => {
    expect(k.has_ptrace_seize).toBe(true);
    expect(k.has_ptrace_peeksiginfo).toBe(true);
    expect(k.has_clone3_set_tid).toBe(true);
    expect(k.vdso!.mremap_ok).toBe(true);
    expect(k.xsave!.ptrace_size).toBeGreaterThanOrEqual(576); // legacy area + header at least
  });

  it('dirty tracking: soft-dirty absent here, PAGEMAP_SCAN + async uffd-wp works instead', () => {
    expect(k.has_dirty_track).toBe(false); // CONFIG_MEM_SOFT_DIRTY is off on this kernel
    expect(k.has_pagemap_scan).toBe(true);
    expect(k.uffd_feature_names).toContain('WP_ASYNC');
    expect(k.has_pagemap_scan_dirty_track).toBe(true);
  });

  it('overlayfs maps probe runs in its own mount namespace and leaves no mount behind', () => {
    expect(k.has_overlayfs).toBe(kernelKnows('overlay'));
    if (k.has_overlayfs) expect(typeof k.has_overlayfs_maps).toBe('boolean');
    else expect(k.has_overlayfs_maps).toBeUndefined();
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('crtools-kerndat-ovl-');
  });

  it('autofs: an answer whether or not this kernel has it, and no mount left behind', () => {
    // (a modular autofs is loaded by the probe's own mount, so /proc/filesystems is read after it)
    expect(k.has_autofs).toBe(kernelKnows('autofs'));
    if (k.has_autofs) expect(typeof k.has_autofs_pipe_ino).toBe('boolean');
    else expect(k.has_autofs_pipe_ino).toBeUndefined();
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('crtools-kerndat-autofs-');
  });

  it('only= runs a subset', () => {
    const s = probeKerndat({ only: ['page_size', 'uffd'] });
    expect(Object.keys(s).sort()).toEqual(['arch', 'boot_id', 'errors', 'has_uffd', 'page_size', 'probe_revision', 'probed_at', 'probes', 'release', 'schema', 'uffd_feature_names', 'uffd_features'].sort());
  });
});
