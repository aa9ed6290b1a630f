import { describe, expect, it } from 'vitest';
import { decodeGpRegs, encodeGpRegs, GP_REG_NAMES, GP_REGS_SIZE } from '../src/regs.js';
import { decodeWaitStatus, PTRACE_EVENT_STOP } from '../src/wait-status.js';
import { decodeXsave } from '../src/xsave.js';

describe('wait status', () => {
  it('decodes a PTRACE_EVENT_STOP, a signal-delivery-stop, an exit and a kill', () => {
    expect(decodeWaitStatus((PTRACE_EVENT_STOP << 16) | (5 << 8) | 0x7f)).toEqual({ stopped: true, stopSignal: 5, event: PTRACE_EVENT_STOP });
    expect(decodeWaitStatus((10 << 8) | 0x7f)).toEqual({ stopped: true, stopSignal: 10, event: 0 });
    expect(decodeWaitStatus(3 << 8)).toMatchObject({ stopped: false, exitCode: 3 });
    expect(decodeWaitStatus(9)).toMatchObject({ stopped: false, termSignal: 9 });
  });
});

describe('general registers', () => {
  it('round-trips user_regs_struct in kernel field order, 64-bit values intact', () => {
    const buf = Buffer.alloc(GP_REGS_SIZE);
    GP_REG_NAMES.forEach((_, i) => buf.writeBigUInt64LE(0xffffffffff600000n + BigInt(i), i * 8));
    const r = decodeGpRegs(buf);
    expect(r.r15).toBe(0xffffffffff600000n);
    expect(r.orig_ax).toBe(0xffffffffff600000n + 15n);
    expect(r.gs).toBe(0xffffffffff600000n + 26n);
    expect(encodeGpRegs(r).equals(buf)).toBe(true);
    expect(GP_REGS_SIZE).toBe(27 * 8);
  });
});

describe('xsave decoding', () => {
  it('reads the legacy area and keeps only components XCR0 enables', () => {
    const b = Buffer.alloc(4096);
    b.writeUInt16LE(0x37f, 0); // fcw
    b.writeUInt32LE(0x1f80, 24); // mxcsr
    b.writeUInt32LE(0xdeadbeef, 160); // xmm0 low word
    b.writeBigUInt64LE(0x3n, 464); // XCR0 = x87|SSE only: no AVX component
    b.writeBigUInt64LE(0x3n, 512); // xstate_bv
    // this CPU's layout is not needed: give AVX (component 2) at its usual offset
    const fp = decodeXsave(b, 4096, new Map([[2, 576]]));
    expect(fp.cwd).toBe(0x37f);
    expect(fp.mxcsr).toBe(0x1f80);
    expect(fp.st_space).toHaveLength(32);
    expect(fp.xmm_space).toHaveLength(64);
    expect(fp.xmm_space[0]).toBe(0xdeadbeef);
    expect(fp.xsave).toEqual({ xstate_bv: 3n });
  });

  it('a legacy-only (512-byte) area has no xsave part', () => {
    expect(decodeXsave(Buffer.alloc(512), 512, new Map()).xsave).toBeUndefined();
  });
});

describe('xsave components', () => {
  it('an enabled component is read at its offset with CRIU\'s element count', () => {
    const b = Buffer.alloc(4096);
    b.writeBigUInt64LE(0x207n, 464); // x87|SSE|AVX|PKRU
    b.writeUInt32LE(0x11223344, 576);
    b.writeUInt32LE(0x55555554, 2432);
    const fp = decodeXsave(b, 4096, new Map([[2, 576], [9, 2432]]));
    expect(fp.xsave?.ymmh_space).toHaveLength(64);
    expect(fp.xsave?.ymmh_space?.[0]).toBe(0x11223344);
    expect(fp.xsave?.pkru).toEqual([0x55555554, 0]);
  });
});
