/**
 * An x86 CPU as CRIU's cpuinfo.img describes it: the fields of cpuinfo_x86_entry under their
 * image names, every one present (an image's missing ones are filled in when it is read, as
 * CRIU fills them).
 */
export interface X86Cpuinfo {
  vendor_id: 'INTEL' | 'AMD';
  cpu_family: number;
  model: number;
  stepping: number;
  /** 2 for what this package builds; 1 for old images (12 words, the rest taken from this CPU) */
  capability_ver: number;
  /** NCAPINTS uint32 words in CRIU's layout (features.ts) */
  capability: number[];
  /** the brand string (cpuid 0x80000002..4) without its leading blanks; absent when the CPU has none */
  model_id?: string;
  /** the xsave components CRIU counts (user ones the CPU's feature bits back) */
  xfeatures_mask: bigint;
  /** cpuid(0xd,0).ebx: the xsave area size for the components the OS enabled */
  xsave_size: number;
  /** cpuid(0xd,0).ecx: the size for every component the CPU supports */
  xsave_size_max: number;
}

/** cpuid(leaf, subleaf) → [eax, ebx, ecx, edx], each an unsigned 32-bit number. */
export type Cpuid = (leaf: number, subleaf: number) => readonly [number, number, number, number];
