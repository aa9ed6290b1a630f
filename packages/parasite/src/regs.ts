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
