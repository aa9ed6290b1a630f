import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { decodeImage, decodeImageColumns, encodeImage } from '../src/index.js';

const FIELDS = ['vaddr', 'compat_nr_pages', 'in_parent', 'flags', 'nr_pages'];
const pagemap = (entries: object[]) => encodeImage({ magic: 'PAGEMAP', entries: [{ pages_id: 7 }, ...entries] });

describe('decodeImageColumns', () => {
  it('reads the asked fields of every entry as numbers, NaN where absent, the head whole; the same values as a whole decode', () => {
    const entries = [
      { vaddr: 0x7f0000000000n, compat_nr_pages: 0, flags: 6, nr_pages: 230n },
      { vaddr: 0x7f00000e6000n, compat_nr_pages: 3, in_parent: true },
      // a page-aligned address above 2^53 is exact as a double
      { vaddr: 0xfffffffffffff000n, compat_nr_pages: 0, flags: 1, nr_pages: 1n },
    ];
    const buf = pagemap(entries);
    const c = decodeImageColumns(buf, { name: 'PAGEMAP', fields: FIELDS });
    expect(c.magic).toBe('PAGEMAP');
    expect(c.head).toEqual({ pages_id: 7 });
    expect(c.count).toBe(3);
    const whole = decodeImage(buf).entries.slice(1) as Record<string, unknown>[];
    for (const f of FIELDS) {
      whole.forEach((e, i) => {
        const v = e[f];
        const want = v === undefined ? NaN : typeof v === 'boolean' ? Number(v) : Number(v as number | bigint);
        expect(c.columns[f]![i], `${f} of entry ${i + 1}`).toBe(want);
        if (typeof v === 'bigint') expect(BigInt(c.columns[f]![i]!)).toBe(v);
      });
    }
  });

  it('an empty image has no head and no entries', () => {
    const c = decodeImageColumns(encodeImage({ magic: 'PAGEMAP', entries: [] }), { name: 'PAGEMAP', fields: ['vaddr'] });
    expect(c.head).toBeUndefined();
    expect(c.count).toBe(0);
    expect(c.columns.vaddr!.length).toBe(0);
  });

  it('refuses what a double would round, a missing required field, a cut entry, another kind, a field it cannot read', () => {
    const err = (fn: () => unknown): any => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      throw new Error('expected an error');
    };
    const odd = err(() => decodeImageColumns(pagemap([{ vaddr: 0xffffffffff600001n, compat_nr_pages: 1 }]), { name: 'PAGEMAP', fields: FIELDS, file: 'pm.img' }));
    expect(isCrtoolsError(odd) && odd.code).toBe('IMG_BAD_ENTRY');
    expect(odd.message).toMatch(/pm\.img.*entry 1.*vaddr: ffffffffff600001 is not exact/);
    // (pagemap_entry without its required compat_nr_pages: hand-made, the encoder would refuse it)
    const bare = Buffer.concat([encodeImage({ magic: 'PAGEMAP', entries: [{ pages_id: 1 }] }), Buffer.from([2, 0, 0, 0, 0x08, 0x01])]);
    expect(err(() => decodeImageColumns(bare, { name: 'PAGEMAP', fields: ['vaddr'] })).message).toMatch(/required field compat_nr_pages is missing/);
    const good = pagemap([{ vaddr: 0x1000n, compat_nr_pages: 1 }]);
    const cut = err(() => decodeImageColumns(good.subarray(0, good.length - 1), { name: 'PAGEMAP', fields: ['vaddr'] }));
    expect(isCrtoolsError(cut) && cut.code).toBe('IMG_TRUNCATED');
    expect(isCrtoolsError(err(() => decodeImageColumns(good, { name: 'MM', fields: ['vaddr'] })))).toBe(true);
    expect(() => decodeImageColumns(good, { name: 'PAGEMAP', fields: ['nope'] })).toThrow(/no field nope/);
  });
});
