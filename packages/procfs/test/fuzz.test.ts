import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexReplacer, isCrtoolsError, parseMaps, parseMapsLine, parseMapsTable, PROCFS_PARSE, tableVmas } from './lib.js';
import { TEXT_KINDS } from './text-kinds.js';

/** mulberry32: a small seeded PRNG so every run mutates the same way. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['0', '9', 'a', 'f', 'x', 'z', ' ', '\t', '\n', ':', '-', '(', ')', '[', ']', '/', '\\', '\0', 'é', '\u{1F600}', '-1', '99999999999999999999999', 'ffffffffffffffffff', ' (deleted)', '\\012', 'kB'];

function mutate(src: Buffer, r: () => number): Buffer {
  let s = src.toString('latin1');
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(r() * (s.length + 1));
    const pick = ALPHABET[Math.floor(r() * ALPHABET.length)]!;
    switch (Math.floor(r() * 7)) {
      case 0: s = s.slice(0, at) + pick + s.slice(at + 1); break; // replace
      case 1: s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 20)); break; // delete
      case 2: s = s.slice(0, at) + pick + s.slice(at); break; // insert
      case 3: s = s.slice(0, at); break; // truncate
      case 4: { // duplicate a line
        const ls = s.split('\n');
        const i = Math.floor(r() * ls.length);
        ls.splice(i, 0, ls[i]!);
        s = ls.join('\n');
        break;
      }
      case 5: { // swap two lines
        const ls = s.split('\n');
        const i = Math.floor(r() * ls.length), j = Math.floor(r() * ls.length);
        [ls[i], ls[j]] = [ls[j]!, ls[i]!];
        s = ls.join('\n');
        break;
      }
      default: { // flip a byte
        const b = Buffer.from(s, 'latin1');
        if (b.length) b[Math.floor(r() * b.length)]! ^= 1 << Math.floor(r() * 8);
        s = b.toString('latin1');
      }
    }
  }
  return Buffer.from(s, 'latin1');
}

const dir = join(import.meta.dirname, 'golden');
const inputs = readdirSync(dir).filter((f) => /\.(txt|bin)$/.test(f));
const ROUNDS = 250;

/** Parse must either succeed (and serialize) or throw a CrtoolsError PROCFS_PARSE; nothing else. */
function check(kind: string, data: Buffer, onError: boolean) {
  const parse = TEXT_KINDS[kind]!;
  const reported: unknown[] = [];
  try {
    const out = parse(data, { path: 'fuzz', onError: onError ? (e) => reported.push(e) : undefined });
    JSON.stringify(out, hexReplacer);
  } catch (e) {
    if (!isCrtoolsError(e) || e.code !== PROCFS_PARSE) throw new Error(`${kind}: unexpected ${String(e)}\ninput: ${JSON.stringify(data.toString('latin1').slice(0, 300))}`);
    expect(e.context.line).toBeTypeOf('number');
  }
  for (const e of reported) expect(isCrtoolsError(e) && e.code === PROCFS_PARSE).toBe(true);
}

describe('fuzz: seeded mutations of golden inputs', () => {
  for (const f of inputs) {
    const kind = /^.+\.([a-z]+)\.(txt|bin)$/.exec(f)![1]!;
    it(`${f}: ${ROUNDS} mutations parse or throw PROCFS_PARSE`, () => {
      const src = readFileSync(join(dir, f));
      const r = rng(0xc0ffee ^ f.length * 7919);
      for (let i = 0; i < ROUNDS; i++) {
        const m = mutate(src, r);
        check(kind, m, false);
        check(kind, m, true);
      }
    });
  }
  it('MapsTable and Vma objects agree on every mutated maps input (records and reported errors)', () => {
    const r = rng(99);
    for (const f of inputs.filter((x) => x.endsWith('.maps.txt'))) {
      const src = readFileSync(join(dir, f));
      for (let i = 0; i < 200; i++) {
        const text = mutate(src, r).toString('latin1');
        const ea: unknown[] = [], eb: unknown[] = [];
        const a = parseMaps(text, { onError: (e) => ea.push(e.message) });
        const b = Array.from(tableVmas(parseMapsTable(text, { onError: (e) => eb.push(e.message) })));
        expect(b).toEqual(a);
        expect(eb).toEqual(ea);
      }
    }
  });

  it('random lines never crash parseMapsLine', () => {
    const r = rng(42);
    for (let i = 0; i < 5000; i++) {
      let l = '';
      const n = Math.floor(r() * 100);
      for (let k = 0; k < n; k++) l += ALPHABET[Math.floor(r() * ALPHABET.length)];
      try {
        parseMapsLine(l);
      } catch (e) {
        expect(isCrtoolsError(e) && e.code === PROCFS_PARSE).toBe(true);
      }
    }
  });
});
