/**
 * The layout of CRIU's x86 capability words (cpuinfo_x86_entry.capability), a fact of the
 * image format: word N holds the register of the cpuid leaf below, bit for bit, except word 3,
 * where CRIU keeps a few feature bits of its own (Linux's "synthetic" word). capability_ver 1
 * images carry the first 12 words, version 2 (what CRIU 4.x writes) all 19.
 *
 * A feature is named by its number, word * 32 + bit, and by the name Linux shows in
 * /proc/cpuinfo.
 */

/** Word index of each register, by the leaf (and subleaf) that fills it. */
export const WORD = {
  CPUID_1_EDX: 0,
  CPUID_8000_0001_EDX: 1,
  CPUID_8086_0001_EDX: 2, // (Transmeta; never filled)
  LINUX_1: 3, // CRIU's own bits: rep_good, nopl, cpuid
  CPUID_1_ECX: 4,
  CPUID_C000_0001_EDX: 5, // (Centaur; never filled)
  CPUID_8000_0001_ECX: 6,
  LINUX_2: 7, // (never filled)
  LINUX_3: 8, // (never filled)
  CPUID_7_0_EBX: 9,
  CPUID_D_1_EAX: 10,
  CPUID_7_0_ECX: 11,
  CPUID_F_1_EDX: 12,
  CPUID_8000_0008_EBX: 13,
  CPUID_6_EAX: 14,
  CPUID_8000_000A_EDX: 15,
  CPUID_F_0_EDX: 16,
  CPUID_8000_0007_EBX: 17,
  CPUID_7_0_EDX: 18,
} as const;

/** Words in a capability_ver 1 image. */
export const NCAPINTS_V1 = 12;
/** Words in a capability_ver 2 image, and in every cpuinfo this package builds. */
export const NCAPINTS = 19;
/** The capability_ver CRIU 4.x writes (and this package). */
export const CAPABILITY_VER = 2;
/** Words each capability_ver carries. */
export const WORDS_OF_VERSION: Readonly<Record<number, number>> = { 1: NCAPINTS_V1, 2: NCAPINTS };

/** Where each word comes from, as `cpuid(leaf,subleaf).reg`, for features without a name. */
const WORD_SOURCE = [
  'cpuid(0x1).edx', 'cpuid(0x80000001).edx', 'cpuid(0x80860001).edx', 'word 3', 'cpuid(0x1).ecx', 'cpuid(0xc0000001).edx',
  'cpuid(0x80000001).ecx', 'word 7', 'word 8', 'cpuid(0x7,0).ebx', 'cpuid(0xd,1).eax', 'cpuid(0x7,0).ecx', 'cpuid(0xf,1).edx',
  'cpuid(0x80000008).ebx', 'cpuid(0x6).eax', 'cpuid(0x8000000a).edx', 'cpuid(0xf,0).edx', 'cpuid(0x80000007).ebx', 'cpuid(0x7,0).edx',
];

/** /proc/cpuinfo names of the bits of each word (the ones CRIU's layout knows). */
const NAMES: Record<number, Record<number, string>> = {
  [WORD.CPUID_1_EDX]: {
    0: 'fpu', 1: 'vme', 2: 'de', 3: 'pse', 4: 'tsc', 5: 'msr', 6: 'pae', 7: 'mce', 8: 'cx8', 9: 'apic', 11: 'sep', 12: 'mtrr',
    13: 'pge', 14: 'mca', 15: 'cmov', 16: 'pat', 17: 'pse36', 18: 'pn', 19: 'clflush', 21: 'dts', 22: 'acpi', 23: 'mmx',
    24: 'fxsr', 25: 'sse', 26: 'sse2', 27: 'ss', 28: 'ht', 29: 'tm', 30: 'ia64', 31: 'pbe',
  },
  [WORD.CPUID_8000_0001_EDX]: {
    11: 'syscall', 19: 'mp', 20: 'nx', 22: 'mmxext', 25: 'fxsr_opt', 26: 'pdpe1gb', 27: 'rdtscp', 29: 'lm', 30: '3dnowext', 31: '3dnow',
  },
  [WORD.LINUX_1]: { 16: 'rep_good', 20: 'nopl', 25: 'cpuid' },
  [WORD.CPUID_1_ECX]: {
    0: 'pni', 1: 'pclmulqdq', 2: 'dtes64', 3: 'monitor', 4: 'ds_cpl', 5: 'vmx', 6: 'smx', 7: 'est', 8: 'tm2', 9: 'ssse3', 10: 'cid',
    11: 'sdbg', 12: 'fma', 13: 'cx16', 14: 'xtpr', 15: 'pdcm', 17: 'pcid', 18: 'dca', 19: 'sse4_1', 20: 'sse4_2', 21: 'x2apic',
    22: 'movbe', 23: 'popcnt', 24: 'tsc_deadline_timer', 25: 'aes', 26: 'xsave', 27: 'osxsave', 28: 'avx', 29: 'f16c', 30: 'rdrand',
    31: 'hypervisor',
  },
  [WORD.CPUID_8000_0001_ECX]: {
    0: 'lahf_lm', 1: 'cmp_legacy', 2: 'svm', 3: 'extapic', 4: 'cr8_legacy', 5: 'abm', 6: 'sse4a', 7: 'misalignsse', 8: '3dnowprefetch',
    9: 'osvw', 10: 'ibs', 11: 'xop', 12: 'skinit', 13: 'wdt', 15: 'lwp', 16: 'fma4', 17: 'tce', 19: 'nodeid_msr', 21: 'tbm',
    22: 'topoext', 23: 'perfctr_core', 24: 'perfctr_nb', 26: 'bpext', 27: 'ptsc', 28: 'perfctr_llc', 29: 'mwaitx',
  },
  [WORD.CPUID_7_0_EBX]: {
    0: 'fsgsbase', 1: 'tsc_adjust', 3: 'bmi1', 4: 'hle', 5: 'avx2', 7: 'smep', 8: 'bmi2', 9: 'erms', 10: 'invpcid', 11: 'rtm',
    12: 'cqm', 14: 'mpx', 15: 'rdt_a', 16: 'avx512f', 17: 'avx512dq', 18: 'rdseed', 19: 'adx', 20: 'smap', 21: 'avx512ifma',
    23: 'clflushopt', 24: 'clwb', 25: 'intel_pt', 26: 'avx512pf', 27: 'avx512er', 28: 'avx512cd', 29: 'sha_ni', 30: 'avx512bw',
    31: 'avx512vl',
  },
  [WORD.CPUID_D_1_EAX]: { 0: 'xsaveopt', 1: 'xsavec', 2: 'xgetbv1', 3: 'xsaves' },
  [WORD.CPUID_7_0_ECX]: {
    0: 'prefetchwt1', 1: 'avx512vbmi', 2: 'umip', 3: 'pku', 4: 'ospke', 6: 'avx512_vbmi2', 7: 'shstk', 8: 'gfni', 9: 'vaes',
    10: 'vpclmulqdq', 11: 'avx512_vnni', 12: 'avx512_bitalg', 13: 'tme', 14: 'avx512_vpopcntdq', 16: 'la57', 22: 'rdpid', 25: 'cldemote',
  },
  [WORD.CPUID_F_1_EDX]: { 0: 'cqm_occup_llc', 1: 'cqm_mbm_total', 2: 'cqm_mbm_local' },
  [WORD.CPUID_8000_0008_EBX]: { 0: 'clzero', 1: 'irperf', 2: 'xsaveerptr', 12: 'ibpb', 14: 'ibrs', 15: 'stibp' },
  [WORD.CPUID_6_EAX]: {
    0: 'dtherm', 1: 'ida', 2: 'arat', 4: 'pln', 6: 'pts', 7: 'hwp', 8: 'hwp_notify', 9: 'hwp_act_window', 10: 'hwp_epp',
    11: 'hwp_pkg_req', 13: 'hdc',
  },
  [WORD.CPUID_8000_000A_EDX]: {
    0: 'npt', 1: 'lbrv', 2: 'svm_lock', 3: 'nrip_save', 4: 'tsc_scale', 5: 'vmcb_clean', 6: 'flushbyasid', 7: 'decodeassists',
    10: 'pausefilter', 12: 'pfthreshold', 13: 'avic', 15: 'v_vmsave_vmload', 16: 'vgif',
  },
  [WORD.CPUID_F_0_EDX]: { 1: 'cqm_llc' },
  [WORD.CPUID_8000_0007_EBX]: { 0: 'overflow_recov', 1: 'succor', 3: 'smca' },
  [WORD.CPUID_7_0_EDX]: {
    2: 'avx512_4vnniw', 3: 'avx512_4fmaps', 18: 'pconfig', 26: 'spec_ctrl', 27: 'intel_stibp', 29: 'arch_capabilities', 31: 'spec_ctrl_ssbd',
  },
};

const BY_NAME = new Map<string, number>();
for (const [w, bits] of Object.entries(NAMES)) for (const [b, n] of Object.entries(bits)) BY_NAME.set(n, Number(w) * 32 + Number(b));

/** A feature's number (word * 32 + bit) by its /proc/cpuinfo name; throws for a name this layout lacks. */
export function feature(name: string): number {
  const f = BY_NAME.get(name);
  if (f === undefined) throw new RangeError(`no x86 feature named ${name} in CRIU's capability words`);
  return f;
}

/** Every named feature, name → number. */
export function featureNames(): ReadonlyMap<string, number> {
  return BY_NAME;
}

/** A feature's name, or where it sits (`cpuid(0x7,0).edx bit 5`) when it has none here. */
export function featureName(f: number): string {
  const w = f >> 5;
  const b = f & 31;
  return NAMES[w]?.[b] ?? `${WORD_SOURCE[w] ?? `word ${w}`} bit ${b}`;
}

/** Whether capability words hold a feature. */
export function hasFeature(words: readonly number[], f: number): boolean {
  return (((words[f >> 5] ?? 0) >>> (f & 31)) & 1) === 1;
}

export function setFeature(words: number[], f: number): void {
  words[f >> 5] = ((words[f >> 5] ?? 0) | (1 << (f & 31))) >>> 0;
}

export function clearFeature(words: number[], f: number): void {
  words[f >> 5] = ((words[f >> 5] ?? 0) & ~(1 << (f & 31))) >>> 0;
}

/** The features set in `words` and clear in `other` (each word ANDed with `mask` first, when given). */
export function featuresOnlyIn(words: readonly number[], other: readonly number[], mask?: readonly number[]): number[] {
  const out: number[] = [];
  for (let w = 0; w < words.length; w++) {
    const m = mask ? (mask[w] ?? 0) : 0xffffffff;
    const extra = ((words[w] ?? 0) & m & ~(other[w] ?? 0)) >>> 0;
    for (let b = 0; b < 32; b++) if ((extra >>> b) & 1) out.push(w * 32 + b);
  }
  return out;
}

/**
 * xsave state components (bits of xfeatures_mask / XCR0) by number, and the feature that
 * must be present for CRIU to count each (it drops the others from the mask).
 */
export const XFEATURES: readonly { name: string; needs: string }[] = [
  { name: 'x87', needs: 'fpu' },
  { name: 'sse', needs: 'sse' },
  { name: 'avx', needs: 'avx' },
  { name: 'mpx_bndregs', needs: 'mpx' },
  { name: 'mpx_bndcsr', needs: 'mpx' },
  { name: 'avx512_opmask', needs: 'avx512f' },
  { name: 'avx512_zmm_hi256', needs: 'avx512f' },
  { name: 'avx512_hi16_zmm', needs: 'avx512f' },
  { name: 'pt', needs: 'intel_pt' },
  { name: 'pkru', needs: 'pku' },
  { name: 'hdc', needs: 'hdc' },
];

/** The names of the xsave components set in a mask (`bit12` past the ones above). */
export function xfeatureNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(XFEATURES[i]?.name ?? `bit${i}`);
  return out;
}
