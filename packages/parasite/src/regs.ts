/** Field order of the kernel's struct user_regs_struct (x86_64), also CRIU's user_x86_regs_entry. */
export const GP_REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

export type GpRegName = (typeof GP_REG_NAMES)[number];
export type GpRegs = Record<GpRegName, bigint>;

export const GP_REGS_SIZE = GP_REG_NAMES.length * 8;

export function decodeGpRegs(buf: Buffer): GpRegs {
  const r = {} as GpRegs;
  GP_REG_NAMES.forEach((n, i) => {
    r[n] = buf.readBigUInt64LE(i * 8);
  });
  return r;
}

export function encodeGpRegs(regs: GpRegs, buf: Buffer = Buffer.alloc(GP_REGS_SIZE)): Buffer {
  GP_REG_NAMES.forEach((n, i) => {
    buf.writeBigUInt64LE(BigInt.asUintN(64, regs[n]), i * 8);
  });
  return buf;
}

// Kernel-internal return values of a system call interrupted by a signal (include/linux/errno.h);
// user space never sees them, but a task stopped inside such a call holds one in ax.
const ERESTARTSYS = -512n;
const ERESTARTNOINTR = -513n;
const ERESTARTNOHAND = -514n;
const ERESTART_RESTARTBLOCK = -516n;
const EINTR = -4n;
const NR_POLL = 7n;

/**
 * The registers a checkpoint must store for a task seized inside a system call: the call is
 * set up to run again on resume (ax = the call number, ip back over the 2-byte `syscall`), as
 * the kernel would have done on its way out; a call that can only restart through
 * restart_syscall gets EINTR instead. CRIU stores its images this way, so CRIU restores ours.
 */
export function restartableRegs(regs: GpRegs): GpRegs {
  const signed = (v: bigint) => BigInt.asIntN(64, v);
  if (signed(regs.orig_ax) < 0n) return { ...regs }; // not inside a system call
  const ax = signed(regs.ax);
  if (ax === ERESTARTSYS || ax === ERESTARTNOINTR || ax === ERESTARTNOHAND) {
    return { ...regs, ax: regs.orig_ax, ip: BigInt.asUintN(64, regs.ip - 2n) };
  }
  // poll(2) goes through restart_syscall even without a timeout; with none (a negative one, as
  // in tail -f) running it again is the same call, and EINTR would end programs that take it
  // as fatal (CRIU gives EINTR there)
  if (ax === ERESTART_RESTARTBLOCK && regs.orig_ax === NR_POLL && BigInt.asIntN(32, regs.dx & 0xffffffffn) < 0n) {
    return { ...regs, ax: regs.orig_ax, ip: BigInt.asUintN(64, regs.ip - 2n) };
  }
  if (ax === ERESTART_RESTARTBLOCK) return { ...regs, ax: BigInt.asUintN(64, EINTR) };
  return { ...regs };
}
