import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { decodeImage, encodeImage, fromCritJson, openImage, toCritJson } from '../src/index.js';
import { fixtureImages } from './helpers/fixtures.js';
import { sampleImages } from './helpers/synth.js';

/** mulberry32: a small seeded PRNG so every run mutates the same way. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(buf: Buffer, r: () => number): Buffer {
  const b = Buffer.from(buf);
  const int = (n: number) => Math.floor(r() * n);
  switch (int(6)) {
    case 0: // truncate anywhere
      return b.subarray(0, int(b.length));
    case 1: // flip a few bytes
      for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] = int(256);
      return b;
    case 2: // flip bits
      for (let i = 0, n = 1 + int(8); i < n; i++) b[int(b.length)]! ^= 1 << int(8);
      return b;
    case 3: {
      // corrupt a length prefix-ish u32 at an aligned spot after the magic
      const at = 8 + 4 * int(Math.max(1, (b.length - 12) / 4));
      if (at + 4 <= b.length) b.writeUInt32LE([0xffffffff, 0x7fffffff, int(1 << 20), 0, 1][int(5)]!, at);
      return b;
    }
    case 4: {
      // insert random bytes
      const at = int(b.length);
      const ins = Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)));
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    default: {
      // delete a span
      const at = int(b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(32))]);
    }
  }
}

const images = fixtureImages();
// one image per kind per dump keeps the run short while covering every kind
const sample = images.filter((img, i) => images.findIndex((o) => o.kind === img.kind && o.label.split('/')[0] === img.label.split('/')[0]) === i);

describe('fuzz: seeded mutations of synthetic images with every payload kind', () => {
  it('300 mutants of each either decode or throw a CrtoolsError', () => {
    for (const s of sampleImages()) {
      const buf = encodeImage(s);
      const r = rng(buf.length);
      for (let i = 0; i < 300; i++) {
        const m = mutate(buf, r);
        try {
          const image = decodeImage(m, { file: 'mutant.img' });
          encodeImage(image);
          toCritJson(image, { pretty: i % 2 === 0 });
        } catch (e) {
          if (!isCrtoolsError(e)) throw new Error(`mutant ${i} of ${s.label} threw a non-crtools error: ${(e as Error).stack}`);
        }
      }
    }
  }, 120_000);
});

describe.skipIf(images.length === 0)('fuzz: seeded mutations and truncations of the fixtures', () => {
  for (const img of sample) {
    it(`${img.label}: 300 mutants either decode or throw a CrtoolsError`, async () => {
      const buf = readFileSync(img.path);
      const r = rng(0xc0ffee ^ buf.length);
      let decoded = 0;
      let rejected = 0;
      const t0 = Date.now();
      for (let i = 0; i < 300; i++) {
        const m = mutate(buf, r);
        try {
          const image = decodeImage(m, { file: 'mutant.img' });
          decoded++;
          // whatever decodes must also re-encode and render as crit JSON
          const again = encodeImage(image);
          expect(decodeImage(again).entries.length).toBe(image.entries.length);
          for (const pretty of [false, true]) {
            const text = toCritJson(image, { pretty });
            try {
              fromCritJson(text);
            } catch (e) {
              if (!isCrtoolsError(e)) throw e;
            }
          }
        } catch (e) {
          if (!isCrtoolsError(e)) throw new Error(`mutant ${i} of ${img.label} threw a non-crtools error: ${(e as Error).stack}`);
          expect(e.message).not.toContain('\n');
          rejected++;
        }
        if (i % 50 === 0) {
          // the streaming reader agrees on accept/reject
          let ok = true;
          try {
            for await (const _ of openImage(Readable.from([m]), { file: 'mutant.img', chunkSize: 13 }));
          } catch (e) {
            if (!isCrtoolsError(e)) throw e;
            ok = false;
          }
          let whole = true;
          try {
            decodeImage(m);
          } catch {
            whole = false;
          }
          expect(ok).toBe(whole);
        }
      }
      expect(decoded + rejected).toBe(300);
      expect(rejected).toBeGreaterThan(0);
      expect(Date.now() - t0).toBeLessThan(20_000);
    }, 30_000);
  }

  it('mutated crit JSON text either converts or throws a CrtoolsError', () => {
    const r = rng(42);
    for (const img of sample) {
      const text = toCritJson(decodeImage(readFileSync(img.path)), { pretty: r() < 0.5 });
      for (let i = 0; i < 100; i++) {
        const m = mutate(Buffer.from(text, 'latin1'), r).toString('latin1');
        try {
          encodeImage(fromCritJson(m));
        } catch (e) {
          if (!isCrtoolsError(e)) throw new Error(`JSON mutant ${i} of ${img.label}: ${(e as Error).stack}`);
        }
      }
    }
  }, 60_000);
});
