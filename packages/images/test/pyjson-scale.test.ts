import { describe, expect, it } from 'vitest';
import { parseJsonExact } from '../src/pyjson.js';
import { isCrtoolsError } from '@crtools/common';

/** A pagemap-like crit document of n entries; the big vaddr forces the exact (non-JSON.parse) path. */
function doc(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(`{"vaddr": ${18446744073699065856n + BigInt(i) * 4096n}, "name": "e\\t${i}", "flags": "PE_PRESENT", "nr_pages": ${i}}`);
  }
  return `{"magic": "PAGEMAP", "entries": [${parts.join(', ')}]}`;
}

function bestOf(runs: number, f: () => void): number {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0));
  }
  return best;
}

describe('parseJsonExact scales linearly', () => {
  it('a 100x larger document takes well under 100x^2 the time (ratio, not a wall-clock limit)', () => {
    const small = doc(2_000);
    const large = doc(200_000);
    // warm up the parser so the small run is not dominated by compilation
    for (let i = 0; i < 5; i++) parseJsonExact(small);
    const ts = bestOf(5, () => parseJsonExact(small));
    let v: any;
    const tl = bestOf(1, () => (v = parseJsonExact(large)));
    expect(v.entries).toHaveLength(200_000);
    expect(v.entries[199_999].vaddr).toBe(18446744073699065856n + 199_999n * 4096n);
    expect(v.entries[5].name).toBe('e\t5');
    // linear: ~100x (GC and noise on a shared machine allowed up to 10x more); quadratic: ~10,000x
    expect(tl / ts).toBeLessThan(1_000);
  }, 60_000);

  it('strings: escapes, and errors point at the right offset (an unterminated string at its opening quote, as Python)', () => {
    expect(parseJsonExact('["a\\"b\\\\c\\u00e9\\n", "", "x", 18446744073709551615]')).toEqual(['a"b\\cé\n', '', 'x', 18446744073709551615n]);
    const bad = (t: string) => {
      try {
        parseJsonExact(t);
      } catch (e) {
        if (isCrtoolsError(e)) return [e.code, e.context.offset];
        throw e;
      }
      return undefined;
    };
    expect(bad('[18446744073709551615, "abc')).toEqual(['JSON_SYNTAX', 23]);
    expect(bad('[18446744073709551615, "a\u0001"]')).toEqual(['JSON_SYNTAX', 25]);
    expect(bad('[18446744073709551615, "a\\q"]')).toEqual(['JSON_SYNTAX', 25]);
  });
});
