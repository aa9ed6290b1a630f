/**
 * The --cpu-cap rules: whether a checkpoint taken on the image's CPU may run on this one.
 * Checked in CRIU's order (fpu, then ins, then cpu); the first rule broken is the answer.
 */
import { CPU_CAP } from '@crtools/common';
import { feature, featureName, featuresOnlyIn, hasFeature, NCAPINTS, xfeatureNames } from './features.js';
import type { X86Cpuinfo } from './types.js';

/**
 * The instruction-set features the ins rule compares (every other bit may differ): what user
 * code can execute, from x87 and SSE up to AVX-512, as CRIU 4.2 lists them. (CRIU's list
 * leaves out fma and avx512ifma; so does this one, to judge as CRIU judges.)
 */
export const INS_FEATURES: readonly string[] = [
  'fpu', 'tsc', 'cx8', 'sep', 'cmov', 'clflush', 'mmx', 'fxsr', 'sse', 'sse2',
  'syscall', 'mmxext', 'rdtscp', '3dnowext', '3dnow',
  'rep_good', 'nopl',
  'pni', 'pclmulqdq', 'monitor', 'ssse3', 'cx16', 'sse4_1', 'sse4_2', 'movbe', 'popcnt', 'aes', 'xsave', 'osxsave', 'avx', 'f16c', 'rdrand',
  'abm', 'sse4a', 'misalignsse', '3dnowprefetch', 'xop', 'fma4', 'tbm',
  'fsgsbase', 'bmi1', 'hle', 'avx2', 'bmi2', 'erms', 'rtm', 'mpx', 'avx512f', 'avx512dq', 'rdseed', 'adx', 'clflushopt', 'avx512pf',
  'avx512er', 'avx512cd', 'sha_ni', 'avx512bw', 'avx512vl',
  'xsaveopt', 'xsavec', 'xgetbv1',
  'avx512vbmi', 'avx512_vbmi2', 'gfni', 'vaes', 'vpclmulqdq', 'avx512_vnni', 'avx512_bitalg', 'tme', 'avx512_vpopcntdq', 'rdpid',
  'clzero',
  'avx512_4vnniw', 'avx512_4fmaps',
];

/** INS_FEATURES as one mask per capability word. */
export const INS_MASK: readonly number[] = (() => {
  const m = new Array<number>(NCAPINTS).fill(0);
  for (const n of INS_FEATURES) {
    const f = feature(n);
    m[f >> 5] = (m[f >> 5]! | (1 << (f & 31))) >>> 0;
  }
  return m;
})();

/** The feature bits the fpu rule wants present here whenever the image's CPU had them. */
export const FPU_FEATURES: readonly string[] = ['fpu', 'fxsr', 'osxsave', 'xsaves'];

export type CpuRule = 'fpu' | 'xfeatures' | 'xsave_size' | 'xsave_size_max' | 'ins' | 'cpu';

/** The first --cpu-cap rule a checkpoint's CPU breaks here, and how. */
export interface CpuMismatch {
  /** fpu, xfeatures, xsave_size and xsave_size_max belong to --cpu-cap fpu */
  rule: CpuRule;
  /** one line naming what differs */
  message: string;
  /** features (or xsave components) the image has and this CPU lacks */
  missing?: string[];
  /** for cpu: features this CPU has and the image's lacked */
  extra?: string[];
  /** the differing values (xfeatures masks as hex strings, sizes in bytes) */
  image?: number | string;
  host?: number | string;
}

const MAX_LISTED = 12;

function list(names: string[]): string {
  return names.length <= MAX_LISTED ? names.join(', ') : `${names.slice(0, MAX_LISTED).join(', ')} and ${names.length - MAX_LISTED} more`;
}

/**
 * Compare the CPU a checkpoint was taken on (`image`) with this one (`host`) under the
 * CPU_CAP rules in `cap` (IMAGE plays no part here); undefined when every rule holds.
 * - fpu: fpu, fxsr, osxsave and xsaves of the image present here; every xsave component of
 *   the image enabled here; the same xsave area sizes (programs size their buffers once);
 * - ins: the image's instruction-set features (INS_FEATURES) a subset of this CPU's;
 * - cpu: every capability word equal.
 */
export function cpuMismatch(image: X86Cpuinfo, host: X86Cpuinfo, cap: number): CpuMismatch | undefined {
  if (cap & CPU_CAP.FPU) {
    const missing = FPU_FEATURES.filter((n) => hasFeature(image.capability, feature(n)) && !hasFeature(host.capability, feature(n)));
    if (missing.length) {
      return { rule: 'fpu', missing, message: `the image's CPU had FPU features this CPU lacks: ${list(missing)} (--cpu-cap fpu)` };
    }
    const extra = image.xfeatures_mask & ~host.xfeatures_mask;
    if (extra) {
      const names = xfeatureNames(extra);
      return {
        rule: 'xfeatures',
        missing: names,
        image: `0x${image.xfeatures_mask.toString(16)}`,
        host: `0x${host.xfeatures_mask.toString(16)}`,
        message: `the image's CPU had xsave components this CPU lacks: ${list(names)} (xfeatures 0x${image.xfeatures_mask.toString(16)} here 0x${host.xfeatures_mask.toString(16)}; --cpu-cap fpu)`,
      };
    }
    if (image.xsave_size !== host.xsave_size) {
      return {
        rule: 'xsave_size',
        image: image.xsave_size,
        host: host.xsave_size,
        message: `the xsave area size differs: ${image.xsave_size} bytes in the image, ${host.xsave_size} here (--cpu-cap fpu)`,
      };
    }
    if (image.xsave_size_max !== host.xsave_size_max) {
      return {
        rule: 'xsave_size_max',
        image: image.xsave_size_max,
        host: host.xsave_size_max,
        message: `the largest xsave area size differs: ${image.xsave_size_max} bytes in the image, ${host.xsave_size_max} here (--cpu-cap fpu)`,
      };
    }
  }
  if (cap & CPU_CAP.INS) {
    const missing = featuresOnlyIn(image.capability, host.capability, INS_MASK).map(featureName);
    if (missing.length) {
      return { rule: 'ins', missing, message: `the image's CPU had instructions this CPU lacks: ${list(missing)} (--cpu-cap ins)` };
    }
  }
  if (cap & CPU_CAP.CPU) {
    const missing = featuresOnlyIn(image.capability, host.capability).map(featureName);
    const extra = featuresOnlyIn(host.capability, image.capability).map(featureName);
    if (missing.length || extra.length) {
      const parts = [missing.length ? `the image's CPU had ${list(missing)}` : '', extra.length ? `this CPU has ${list(extra)}` : ''].filter(Boolean);
      return { rule: 'cpu', missing, extra, message: `CPU capabilities differ: ${parts.join('; ')} (--cpu-cap cpu wants them equal)` };
    }
  }
  return undefined;
}
