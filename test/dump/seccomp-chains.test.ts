/**
 * seccomp.img's chains as the dump writes them (no processes): CRIU 4.2's layout (newest first,
 * `prev` naming the filter installed after, a thread's index its oldest filter) and sharing.
 */
import { describe, expect, it } from 'vitest';
import { SeccompChains } from '@crtools/dump';

const f = (n: number, flags = 0) => ({ filter: Buffer.alloc(8 * n, n), flags });

/** The chain from index i, oldest first, as a restore walks it. */
function walk(filters: { filter: Buffer; prev?: number; flags: number }[], i: number) {
  const out: { filter: Buffer; flags: number }[] = [];
  for (let at: number | undefined = i; at !== undefined; at = filters[at]!.prev) out.push({ filter: filters[at]!.filter, flags: filters[at]!.flags });
  return out;
}

describe('seccomp chains', () => {
  it('one chain: newest first, each older filter linked to the one installed after it, the index names the oldest', () => {
    const c = new SeccompChains();
    expect(c.add([f(1), f(2), f(3)])).toBe(2);
    const { seccomp_filters: all } = c.entry() as { seccomp_filters: { filter: Buffer; prev?: number; flags: number }[] };
    expect(all.map((e) => [e.filter[0], e.prev])).toEqual([[3, undefined], [2, 0], [1, 1]]);
    expect(walk(all, 2)).toEqual([f(1), f(2), f(3)]);
  });

  it('identical chains (two threads, two tasks) are written once; chains differing anywhere, in flags too, are not merged', () => {
    const c = new SeccompChains();
    const a = c.add([f(1), f(2)]);
    expect(c.add([f(1), f(2)])).toBe(a);
    const b = c.add([f(1), f(4)]);
    const d = c.add([f(1), f(2, 1)]);
    const e = c.add([f(1), f(2), f(5)]);
    const { seccomp_filters: all } = c.entry() as { seccomp_filters: { filter: Buffer; prev?: number; flags: number }[] };
    expect(new Set([a, b, d, e]).size).toBe(4);
    expect(walk(all, a)).toEqual([f(1), f(2)]);
    expect(walk(all, b)).toEqual([f(1), f(4)]);
    expect(walk(all, d)).toEqual([f(1), f(2, 1)]);
    expect(walk(all, e)).toEqual([f(1), f(2), f(5)]);
    // chains that end alike share their newest filters
    const g = c.add([f(6), f(2)]);
    expect(walk(all, g)).toEqual([f(6), f(2)]);
    expect(all[g]!.prev).toBe(all[a]!.prev);
  });

  it('no filters: an empty list', () => expect(new SeccompChains().entry()).toEqual({ seccomp_filters: [] }));
});
