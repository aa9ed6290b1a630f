import { describe, expect, it } from 'vitest';
import { GP_REG_NAMES, restartableRegs, type GpRegs } from '../src/regs.js';

const u64 = (v: bigint) => BigInt.asUintN(64, v);
function regs(over: Partial<GpRegs>): GpRegs {
  const r = Object.fromEntries(GP_REG_NAMES.map((n) => [n, 0n])) as GpRegs;
  return { ...r, ip: 0x401002n, ...over };
}

describe('restartableRegs (a task seized inside a system call)', () => {
  it.each([[-512n, 'ERESTARTSYS'], [-513n, 'ERESTARTNOINTR'], [-514n, 'ERESTARTNOHAND']])('%s (%s): the call runs again', (code) => {
    const r = restartableRegs(regs({ orig_ax: 35n, ax: u64(code) }));
    expect(r.ax).toBe(35n); // nanosleep again
    expect(r.ip).toBe(0x401000n); // back over the syscall instruction
  });

  it('ERESTART_RESTARTBLOCK: the call returns EINTR', () => {
    const r = restartableRegs(regs({ orig_ax: 230n, ax: u64(-516n) }));
    expect(r.ax).toBe(u64(-4n));
    expect(r.ip).toBe(0x401002n);
  });

  it('poll with no timeout (negative), which the kernel restarts through restart_syscall too: the call runs again', () => {
    const r = restartableRegs(regs({ orig_ax: 7n, ax: u64(-516n), dx: 0xffffffffn }));
    expect(r.ax).toBe(7n);
    expect(r.ip).toBe(0x401000n);
    const timed = restartableRegs(regs({ orig_ax: 7n, ax: u64(-516n), dx: 1000n })); // the time left is lost: EINTR
    expect(timed.ax).toBe(u64(-4n));
    expect(timed.ip).toBe(0x401002n);
  });

  it('outside a system call, or with a real result, nothing changes', () => {
    const outside = regs({ orig_ax: u64(-1n), ax: u64(-512n) });
    expect(restartableRegs(outside)).toEqual(outside);
    const done = regs({ orig_ax: 0n, ax: 5n });
    expect(restartableRegs(done)).toEqual(done);
  });

  it('never mutates its input', () => {
    const r = regs({ orig_ax: 35n, ax: u64(-514n) });
    restartableRegs(r);
    expect(r.ax).toBe(u64(-514n));
  });
});
