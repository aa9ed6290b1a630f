import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { canInstallGuards, guardRegions, pagemapScanAll, PAGE_IS, setNativeBinding, type SysNative } from '../src/index.js';
import { readMaps } from '@crtools/procfs';

afterEach(() => setNativeBinding(undefined));

const PAGE = 4096n;
// x86_64 with 4-level page tables: PAGEMAP_SCAN refuses (EFAULT) a walk past the user address space
const TASK_SIZE = 0x7ffffffff000n;

describe('guard regions', () => {
  const guards = canInstallGuards();

  it('canInstallGuards answers no where the kernel refuses the advice', async () => {
    const { addon } = await import('../src/native.js');
    const real = addon.get();
    setNativeBinding({ ...real, guardProbe: () => ({ errno: 22, syscall: 'madvise' }) } as SysNative);
    expect(canInstallGuards()).toBe(false);
  });

  it('PAGEMAP_SCAN regions of a region-less scan are joined and returned empty', () => {
    const fake = { pagemapScan: () => ({ regions: Buffer.alloc(0), walkEnd: 0x2000n }) } as unknown as SysNative;
    setNativeBinding(fake);
    expect(pagemapScanAll(0, { start: 0n, end: 0x2000n, categoryMask: PAGE_IS.GUARD, returnMask: PAGE_IS.GUARD })).toEqual([]);
  });

  it('finds the guard pages a child installed, by PAGEMAP_SCAN and page by page', async (ctx) => {
    if (!guards) ctx.skip('this kernel has no MADV_GUARD_INSTALL');
    // python3's mmap + madvise through ctypes: a child with guard pages 2-3 of an 8-page area
    const py = `
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
a = libc.mmap(None, 8 * 4096, 3, 0x22, -1, 0)
ctypes.memset(a, 1, 8 * 4096)
assert libc.madvise(ctypes.c_void_p(a + 2 * 4096), ctypes.c_size_t(2 * 4096), 102) == 0, ctypes.get_errno()
print(hex(a), flush=True)
sys.stdin.read()
`;
    const child = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const addr = await new Promise<bigint>((res, rej) => {
        child.stdout!.once('data', (d: Buffer) => res(BigInt(d.toString().trim())));
        child.once('exit', (c) => rej(new Error(`python3 exited ${c}`)));
      });
      const areas = readMaps(child.pid!).map((m) => ({ start: m.start, end: m.end }));
      const want = [{ start: addr + 2n * PAGE, end: addr + 4n * PAGE }];
      let scanned: { start: bigint; end: bigint }[] | undefined;
      try {
        scanned = guardRegions(child.pid!, { how: 'scan', end: TASK_SIZE, areas });
      } catch (e) {
        if ((e as { code?: string }).code !== 'EINVAL') throw e; // a kernel without the category
      }
      if (scanned) expect(scanned).toEqual(want);
      const bits = guardRegions(child.pid!, { how: 'pagemap', end: TASK_SIZE, areas });
      // bit 58 came with 6.15: an older kernel shows no guard bit at all
      if (bits.length) expect(bits).toEqual(want);
      expect(guardRegions(child.pid!, { how: 'none', end: TASK_SIZE, areas })).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
