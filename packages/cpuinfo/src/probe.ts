/**
 * This CPU as CRIU describes it in cpuinfo.img: which cpuid leaves fill which capability words,
 * the few bits CRIU sets or clears by itself, and the xsave mask and sizes. Everything comes
 * from a `cpuid` function, so the rules run on recorded leaves anywhere (tests inject them).
 */
import { CrtoolsError, ExitCode } from '@crtools/common';
import { cpuid as sysCpuid } from '@crtools/sys';
import { CAPABILITY_VER, clearFeature, feature, hasFeature, NCAPINTS, setFeature, WORD, XFEATURES } from './features.js';
import type { Cpuid, X86Cpuinfo } from './types.js';

export interface ProbeOptions {
  /** where the leaves come from (default: the cpuid instruction, through @crtools/sys) */
  cpuid?: Cpuid;
}

/** The xsave components CRIU keeps: x87, SSE, AVX, MPX (2), AVX-512 (3), PKRU. */
const XFEATURE_MASK_USER = 0x2ffn;
/**
 * What CRIU then takes away as "supervisor" components: the PT bit (8) and, because its header
 * ORs in the number of the HDC component (10) where it meant its bit, bits 1 (SSE) and 3 (MPX
 * bounds) too. CRIU 4.2 writes masks without those bits; so does this, to write the same images.
 */
const XFEATURE_MASK_SUPERVISOR_AS_CRIU = (1n << 8n) | 10n;

const VENDORS: Record<string, X86Cpuinfo['vendor_id']> = { GenuineIntel: 'INTEL', AuthenticAMD: 'AMD', HygonGenuine: 'AMD' };

function regText(...regs: number[]): string {
  const b = Buffer.alloc(regs.length * 4);
  regs.forEach((r, i) => b.writeUInt32LE(r >>> 0, i * 4));
  return b.toString('latin1');
}

/**
 * Probe the CPU into CRIU's x86 cpuinfo entry (capability_ver 2, 19 words). Throws
 * CPUINFO_VENDOR for a vendor CRIU's format cannot name (only Intel and AMD, Hygon counting as
 * AMD).
 */
export function probeCpuinfo(opts: ProbeOptions = {}): X86Cpuinfo {
  const raw = opts.cpuid ?? sysCpuid;
  const q = (leaf: number, sub = 0): [number, number, number, number] => {
    const [a, b, c, d] = raw(leaf, sub);
    return [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
  };
  const w: number[] = new Array<number>(NCAPINTS).fill(0);

  const [maxLeaf, v0, v1, v2] = q(0);
  const level = maxLeaf | 0; // CRIU compares it as a signed int
  const vendorText = regText(v0, v2, v1).replace(/\0.*$/s, '');
  const vendor = VENDORS[vendorText];
  if (!vendor) {
    throw new CrtoolsError('CPUINFO_VENDOR', `unsupported CPU vendor '${vendorText}' (CRIU's cpuinfo names only Intel and AMD)`, {
      exitCode: ExitCode.UNSUPPORTED,
      context: { vendor: vendorText },
    });
  }

  let family = 4;
  let model = 0;
  let stepping = 0;
  if (level >= 1) {
    const [a, , c, d] = q(1);
    family = (a >>> 8) & 0xf;
    model = (a >>> 4) & 0xf;
    stepping = a & 0xf;
    if (family === 0xf) family = (family + ((a >>> 20) & 0xff)) & 0xff; // (a byte in CRIU)
    if (family >= 6) model += ((a >>> 16) & 0xf) << 4;
    w[WORD.CPUID_1_EDX] = d;
    w[WORD.CPUID_1_ECX] = c;
  }
  if (level >= 6) w[WORD.CPUID_6_EAX] = q(6)[0];
  if (level >= 7) {
    const [, b, c, d] = q(7, 0);
    w[WORD.CPUID_7_0_EBX] = b;
    w[WORD.CPUID_7_0_ECX] = c;
    w[WORD.CPUID_7_0_EDX] = d;
  }
  if (level >= 0xd) w[WORD.CPUID_D_1_EAX] = q(0xd, 1)[0];
  if (level >= 0xf) {
    w[WORD.CPUID_F_0_EDX] = q(0xf, 0)[3];
    if (hasFeature(w, feature('cqm_llc'))) w[WORD.CPUID_F_1_EDX] = q(0xf, 1)[3];
  }

  const ext = q(0x80000000)[0];
  if ((ext & 0xffff0000) >>> 0 === 0x80000000 && ext >= 0x80000001) {
    const [, , c, d] = q(0x80000001);
    w[WORD.CPUID_8000_0001_ECX] = c;
    w[WORD.CPUID_8000_0001_EDX] = d;
  }
  let modelId = '';
  if (ext >= 0x80000004) {
    const text = regText(...q(0x80000002), ...q(0x80000003), ...q(0x80000004));
    modelId = text.replace(/\0.*$/s, '').replace(/^ +/, '');
  }
  if (ext >= 0x80000007) w[WORD.CPUID_8000_0007_EBX] = q(0x80000007)[1];
  if (ext >= 0x8000000a) w[WORD.CPUID_8000_000A_EDX] = q(0x8000000a)[3];
  if (ext >= 0x80000008) w[WORD.CPUID_8000_0008_EBX] = q(0x80000008)[1];

  // on x86-64 these always hold; CRIU sets them in its own word
  setFeature(w, feature('cpuid'));
  setFeature(w, feature('nopl'));
  // no xsave without the leaf that describes it
  if (level < 0xd) clearFeature(w, feature('xsave'));
  if (vendor === 'INTEL') {
    if (family === 15) {
      clearFeature(w, feature('rep_good'));
      clearFeature(w, feature('erms'));
    } else if (family === 6) setFeature(w, feature('rep_good'));
  } else {
    clearFeature(w, 31); // (AMD used cpuid(1).edx bit 31 for 3DNow; its real bit is in word 1)
    if (family >= 0x10) setFeature(w, feature('rep_good'));
    if (family === 0xf) {
      const sig = q(1)[0];
      if ((sig >= 0x0f48 && sig < 0x0f50) || sig >= 0x0f58) setFeature(w, feature('rep_good'));
    }
  }

  const fpu = probeXsave(w, q);
  return {
    vendor_id: vendor,
    cpu_family: family,
    model: model & 0xff,
    stepping,
    capability_ver: CAPABILITY_VER,
    capability: w,
    ...(modelId ? { model_id: modelId } : {}),
    ...fpu,
  };
}

/** xfeatures_mask and the xsave sizes, as CRIU computes them (zeros without xsave). */
function probeXsave(w: number[], q: (leaf: number, sub?: number) => [number, number, number, number]): Pick<X86Cpuinfo, 'xfeatures_mask' | 'xsave_size' | 'xsave_size_max'> {
  const none = { xfeatures_mask: 0n, xsave_size: 0, xsave_size_max: 0 };
  if (!hasFeature(w, feature('fpu')) || !hasFeature(w, feature('xsave'))) return none;
  const [a, b, c, d] = q(0xd, 0);
  let mask = BigInt(a) | (BigInt(d) << 32n);
  // (CRIU gives up here, keeping the raw mask and no sizes: the CPU's enumeration is broken)
  if ((mask & 3n) !== 3n) return { ...none, xfeatures_mask: mask };
  XFEATURES.forEach((x, i) => {
    if (!hasFeature(w, feature(x.needs))) mask &= ~(1n << BigInt(i));
  });
  mask &= XFEATURE_MASK_USER;
  mask &= ~XFEATURE_MASK_SUPERVISOR_AS_CRIU;
  return { xfeatures_mask: mask, xsave_size: b, xsave_size_max: c };
}

let host: X86Cpuinfo | undefined;

/**
 * This CPU (probed once per process), checked as CRIU checks it before a dump or a restore:
 * an FPU without FXSAVE/FXRSTOR is refused (CPUINFO_NO_FXSR).
 */
export function hostCpuinfo(): X86Cpuinfo {
  if (!host) {
    const h = probeCpuinfo();
    if (hasFeature(h.capability, feature('fpu')) && !hasFeature(h.capability, feature('fxsr'))) {
      throw new CrtoolsError('CPUINFO_NO_FXSR', 'this CPU has an FPU but no fxsave/fxrstor instructions', { exitCode: ExitCode.UNSUPPORTED });
    }
    host = h;
  }
  return host;
}
