/** What the CPU says about itself. */
import { addon } from './native.js';

/** cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx] */
export function cpuid(leaf: number, subleaf = 0): [number, number, number, number] {
  return addon.get().cpuid(leaf, subleaf);
}

/** xgetbv(index): an extended control register (0: XCR0, the enabled xsave components); 0n when the OS has not enabled XSAVE. */
export function xgetbv(index = 0): bigint {
  return addon.get().xgetbv(index);
}
