/**
 * CPUs as tables of cpuid leaves, so the probe runs on any machine: one recorded on a real
 * machine (with the image CRIU 4.2 wrote there), and synthetic ones shaped like common CPUs.
 */
import { readFileSync } from 'node:fs';
import type { Cpuid } from '../src/index.js';

export type Leaves = Record<string, readonly number[]>;

/** A cpuid function answering from a table keyed `0xLEAF,SUB` (zeros for any other leaf). */
export function cpuidOf(leaves: Leaves): Cpuid {
  return (leaf, sub) => {
    const v = leaves[`0x${leaf.toString(16)},${sub}`] ?? [0, 0, 0, 0];
    return [v[0]! >>> 0, v[1]! >>> 0, v[2]! >>> 0, v[3]! >>> 0];
  };
}

/** Registers of leaf 0 (ebx, edx, ecx spell the vendor). */
function vendorLeaf(max: number, vendor: string): number[] {
  const b = Buffer.from(vendor.padEnd(12, '\0'), 'latin1');
  return [max, b.readUInt32LE(0), b.readUInt32LE(8), b.readUInt32LE(4)];
}

/** Leaves 0x80000002..4 for a brand string (48 bytes, NUL-padded). */
function brandLeaves(brand: string): Leaves {
  const b = Buffer.alloc(48);
  b.write(brand, 'latin1');
  const out: Leaves = {};
  for (let i = 0; i < 3; i++) out[`0x${(0x80000002 + i).toString(16)},0`] = [0, 1, 2, 3].map((r) => b.readUInt32LE(i * 16 + r * 4));
  return out;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/amd-turin-vm.json', import.meta.url), 'utf8')) as {
  leaves: Record<string, string[]>;
  criu_cpuinfo_img: string;
};

/** Recorded on an AMD EPYC VM (AVX-512, no xsaves, no pku), and what CRIU 4.2 wrote there. */
export const TURIN_VM = {
  leaves: Object.fromEntries(Object.entries(fixture.leaves).map(([k, v]) => [k, v.map(Number)])) as Leaves,
  criuImage: Buffer.from(fixture.criu_cpuinfo_img, 'hex'),
};

/** An Intel Xeon of the Skylake-SP kind: AVX-512, MPX, PKU, xsaves; a right-justified brand string. */
export const INTEL_SKX: Leaves = {
  '0x0,0': vendorLeaf(0x16, 'GenuineIntel'),
  '0x1,0': [0x00050654, 0x00100800, 0x7ffefbff, 0xbfebfbff],
  '0x6,0': [0x77, 0, 0, 0],
  '0x7,0': [0, 0xd39ffffb, 0x0000000c, 0xbc000000],
  '0xd,0': [0x2ff, 0xa88, 0xa88, 0],
  '0xd,1': [0xf, 0xa08, 0x100, 0],
  '0xf,0': [0, 0xbf, 0, 0x2],
  '0xf,1': [0, 0, 0xbf, 0x7],
  '0x80000000,0': [0x80000008, 0, 0, 0],
  '0x80000001,0': [0, 0, 0x121, 0x2c100800],
  ...brandLeaves('       Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz'),
  '0x80000007,0': [0, 0, 0, 0x100],
  '0x80000008,0': [0x302e, 0, 0, 0],
};

/** An AMD EPYC of the Zen 2 kind: AVX2 but no AVX-512, xsaves, clzero; bit 31 of cpuid(1).edx set. */
export const AMD_ZEN2: Leaves = {
  '0x0,0': vendorLeaf(0x10, 'AuthenticAMD'),
  '0x1,0': [0x00830f10, 0x00400800, 0x7ed8320b, 0x978bfbff],
  '0x6,0': [0x4, 0, 0, 0],
  '0x7,0': [0, 0x219c91a9, 0x00400004, 0],
  '0xd,0': [0x7, 0x340, 0x340, 0],
  '0xd,1': [0xf, 0x340, 0, 0],
  '0x80000000,0': [0x80000020, 0, 0, 0],
  '0x80000001,0': [0x00830f10, 0x40000000, 0x75c237ff, 0x2fd3fbff],
  ...brandLeaves('AMD EPYC 7402P 24-Core Processor               '),
  '0x80000007,0': [0, 0xb, 0, 0x6799],
  '0x80000008,0': [0x3030, 0x1007, 0x703f, 0x10000],
  '0x8000000a,0': [0x1, 0x8000, 0, 0x0001bcff],
};

/** A table with some leaves replaced. */
export function withLeaves(base: Leaves, over: Leaves): Leaves {
  return { ...base, ...over };
}

export { vendorLeaf };
