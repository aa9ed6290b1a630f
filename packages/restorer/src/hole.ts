import { readMaps } from '@crtools/procfs';
import type { RestorePlan } from './plan.js';
import type { SpecialMapping } from './encode.js';

export interface Interval {
  start: bigint;
  end: bigint;
}

/** A mapping of this process as /proc/self/maps lists it. */
export interface SelfMapping extends Interval {
  /** file offset of the start */
  offset: bigint;
  /** device and inode of the mapped file ("0:0:0" for none) */
  devIno: string;
  name: string;
}

/** Mappings of this process (/proc/self/maps, through @crtools/procfs). */
export function selfMappings(): SelfMapping[] {
  return readMaps(process.pid).map((v) => ({ start: v.start, end: v.end, offset: v.pgoff, devIno: `${v.devMajor}:${v.devMinor}:${v.ino}`, name: v.name }));
}

/** The kernel's special mappings (vvar, vdso) among `self` (this process's mappings). */
export function currentSpecials(self: SelfMapping[] = selfMappings()): SpecialMapping[] {
  return self
    .filter((m) => m.name === '[vvar]' || m.name === '[vvar_vclock]' || m.name === '[vdso]')
    .map(({ name, start, end }) => ({ name, start, end }));
}

const LOW = 0x10000000n;
const HIGH = 0x7ff000000000n;
const GAP = 0x1000000n; // 16 MiB of air around the region (stack guard gaps, heap growth)

/**
 * Highest-first candidate starts of `size` bytes free in the launcher and in every task's
 * recorded layout (each task will rebuild exactly its recorded layout around the region).
 */
export function findHoles(size: bigint, plan: RestorePlan, self: Interval[], max = 8): bigint[] {
  const busy: Interval[] = [...self];
  // (the areas themselves: merged copies what it extends)
  for (const t of plan.tasks) for (const v of t.vmas) busy.push(v);
  busy.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: Interval[] = [];
  for (const b of busy) {
    const last = merged[merged.length - 1];
    if (last && b.start <= last.end) {
      if (b.end > last.end) last.end = b.end;
    } else merged.push({ start: b.start, end: b.end }); // (a literal: a spread copy of each area cost ~10x)
  }
  const gaps: Interval[] = [];
  let prev = LOW;
  for (const b of merged) {
    if (b.start > prev) gaps.push({ start: prev, end: b.start < HIGH ? b.start : HIGH });
    if (b.end > prev) prev = b.end;
    if (prev >= HIGH) break;
  }
  if (prev < HIGH) gaps.push({ start: prev, end: HIGH });
  const out: bigint[] = [];
  for (const g of gaps.reverse()) {
    const top = g.end - GAP;
    const bottom = g.start + GAP;
    if (top > bottom && top - bottom >= size) out.push((top - size) & ~0xfffn);
    if (out.length >= max) break;
  }
  return out;
}
