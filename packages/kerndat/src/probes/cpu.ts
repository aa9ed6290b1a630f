import type { Kerndat, KerndatPart } from '../types.js';
import { cpuid, xgetbv } from '@crtools/sys';
import { raw, NR } from '../sys.js';

const XFEATURES = [
  'x87', 'sse', 'avx', 'bndregs', 'bndcsr', 'opmask', 'zmm_hi256', 'hi16_zmm', 'pt', 'pkru', 'pasid',
  'cet_user', 'cet_supervisor', 'hdc', 'uintr', 'lbr', 'hwp', 'xtilecfg', 'xtiledata', 'apx',
];

/** Names of the state components set in an XCR0 value. */
export function xfeatureNames(xcr0: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((xcr0 >> BigInt(i)) & 1n) out.push(XFEATURES[i] ?? `bit${i}`);
  return out;
}

/** XSAVE: enabled components (XCR0), area sizes (cpuid 0xd), what ptrace hands out; CET shadow stacks. */
export function probeCpu(sofar: Partial<Kerndat>): KerndatPart {
  const ptraceXstateSize = sofar.xsave?.ptrace_size ?? 0;
  const [, , c1] = cpuid(1, 0);
  const part: KerndatPart = {};
  if (c1 & (1 << 26)) {
    const xcr0 = xgetbv(0);
    const [, ebx, ecx] = cpuid(0xd, 0);
    // where each enabled user component sits in the standard (non-compacted) XSAVE layout
    const components = [];
    for (let i = 2; i < 64; i++) {
      if (!((xcr0 >> BigInt(i)) & 1n)) continue;
      const [size, offset] = cpuid(0xd, i);
      components.push({ bit: i, name: XFEATURES[i] ?? `bit${i}`, size, offset });
    }
    part.xsave = { xcr0, size: ebx, max_size: ecx, features: xfeatureNames(xcr0), components, ptrace_size: ptraceXstateSize };
  }
  const [, , c7] = cpuid(7, 0);
  const st = Buffer.alloc(8);
  const r = raw(NR.arch_prctl, 0x5005 /* ARCH_SHSTK_STATUS */, st);
  part.has_shstk = r.errno === 0 && (c7 & (1 << 7)) !== 0;
  return part;
}
