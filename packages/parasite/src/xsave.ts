import { cpuid } from '@crtools/sys';

/** NT_PRSTATUS / NT_PRFPREG / NT_X86_XSTATE regset types. */
export const NT_X86_XSTATE = 0x202;

/** Legacy FXSAVE part + XSAVE extended components, as CRIU's user_x86_fpregs_entry stores them. */
export interface FpRegs {
  cwd: number;
  swd: number;
  twd: number;
  fop: number;
  rip: bigint;
  rdp: bigint;
  mxcsr: number;
  mxcsr_mask: number;
  st_space: number[];
  xmm_space: number[];
  xsave?: XsaveComponents;
}

export interface XsaveComponents {
  xstate_bv: bigint;
  ymmh_space?: number[];
  bndreg_state?: bigint[];
  bndcsr_state?: bigint[];
  opmask_reg?: bigint[];
  zmm_upper?: bigint[];
  hi16_zmm?: bigint[];
  pkru?: number[];
}

/** Component number → [CRIU field, element width in bytes, number of elements]. */
const COMPONENTS: Record<number, [keyof XsaveComponents, 4 | 8, number]> = {
  2: ['ymmh_space', 4, 64],
  3: ['bndreg_state', 8, 8],
  4: ['bndcsr_state', 8, 2],
  5: ['opmask_reg', 8, 8],
  6: ['zmm_upper', 8, 64],
  7: ['hi16_zmm', 8, 128],
  9: ['pkru', 4, 2],
};

let layout: Map<number, number> | undefined;

/** Standard-format offsets of the extended components this CPU has (CPUID leaf 0xD). */
export function xsaveLayout(): Map<number, number> {
  if (layout) return layout;
  const m = new Map<number, number>();
  for (const c of Object.keys(COMPONENTS).map(Number)) {
    const [size, offset] = cpuid(0xd, c);
    if (size > 0) m.set(c, offset);
  }
  layout = m;
  return m;
}

function u32s(buf: Buffer, off: number, n: number): number[] {
  const a: number[] = new Array(n);
  for (let i = 0; i < n; i++) a[i] = buf.readUInt32LE(off + i * 4);
  return a;
}

/**
 * n little-endian 64-bit words from off, through an aligned BigUint64Array: one BigInt made per
 * word (readBigUInt64LE makes three; AVX-512's registers are 200 words a thread).
 */
function u64s(buf: Buffer, off: number, n: number): bigint[] {
  const words = new BigUint64Array(n);
  new Uint8Array(words.buffer).set(buf.subarray(off, off + n * 8));
  return Array.from(words);
}

/**
 * Decode a PTRACE_GETREGSET NT_X86_XSTATE buffer (standard XSAVE format).
 * Extended components are kept for every feature the kernel enabled (the xfeatures word
 * of the software-reserved bytes), whether or not they are in their init state,
 * as CRIU does.
 * Only valid for the ptrace layout (bytes 464..471 hold XCR0 there).
 */
export function decodeXsave(buf: Buffer, length: number, layout?: Map<number, number>): FpRegs {
  const fp: FpRegs = {
    cwd: buf.readUInt16LE(0),
    swd: buf.readUInt16LE(2),
    twd: buf.readUInt8(4),
    fop: buf.readUInt16LE(6),
    rip: buf.readBigUInt64LE(8),
    rdp: buf.readBigUInt64LE(16),
    mxcsr: buf.readUInt32LE(24),
    mxcsr_mask: buf.readUInt32LE(28),
    st_space: u32s(buf, 32, 32),
    xmm_space: u32s(buf, 160, 64),
  };
  if (length <= 512) return fp;
  // ptrace's XSTATE regset reports the enabled features (XCR0) in the first software-reserved word
  const features = buf.readBigUInt64LE(464);
  const xs: XsaveComponents = { xstate_bv: buf.readBigUInt64LE(512) };
  for (const [c, offset] of layout ?? xsaveLayout()) {
    if (!(features & (1n << BigInt(c)))) continue;
    const [name, width, count] = COMPONENTS[c]!;
    if (offset + width * count > length) continue;
    if (width === 4) (xs as unknown as Record<string, unknown>)[name] = u32s(buf, offset, count);
    else (xs as unknown as Record<string, unknown>)[name] = u64s(buf, offset, count);
  }
  fp.xsave = xs;
  return fp;
}
