import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pyDumps, pyString, encodeBytes } from '../src/pyjson.js';
import { parseJson, readImageDocument, JsonSyntaxError, type JsonValue } from '../src/index.js';

const hasPython = spawnSync('/usr/bin/python3', ['-c', 'pass']).status === 0;

/** What Python's json module writes for a document: [compact, indent=4]. */
function python(doc: string): [string, string] {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import json,sys; d=json.load(sys.stdin); sys.stdout.write(json.dumps(d)+"\\0"+json.dumps(d, indent=4))'], { input: doc, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const [a, b] = r.stdout.split('\0');
  return [a!, b!];
}

const DOCS = [
  '{"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": 18446744073699065856, "nr_pages": 0, "flags": 4}]}',
  '{"a": [], "b": {}, "c": [[], {}, [1, [2, {"x": null}]]], "d": true, "e": false}',
  '{"s": "tab\\there \\"q\\" back\\\\slash \\u0001 \\u007f caf\\u00e9 \\ud83d\\ude00 /", "neg": -9223372036854775808, "big": 18446744073709551615}',
  '[1, -0, 0, 9007199254740991, 9007199254740992, -9007199254740993, 12345678901234567890123]',
  // crit images have no float fields; non-integral floats still print as Python does
  '{"f": 1.5, "g": 1e-07, "h": 2.5e+20, "i": 0.1}',
  '{"dup": 1, "dup": 2}',
  '"just a string"',
];

describe.skipIf(!hasPython)('crit JSON text matches Python json.dump (the reference crit uses)', () => {
  for (const doc of DOCS) {
    it(`compact and indent=4: ${doc.slice(0, 40)}`, () => {
      const [compact, pretty] = python(doc);
      const v = parseJson(doc);
      expect(pyDumps(v, null)).toBe(compact);
      expect(pyDumps(v, 4)).toBe(pretty);
    });
  }
});

describe('json reader', () => {
  it('keeps integers above 2^53 exact as bigint and small ones as number', () => {
    const v = parseJson('[18446744073699065856, 9007199254740991, -1, 42]') as JsonValue[];
    expect(v[0]).toBe(18446744073699065856n);
    expect(v[1]).toBe(9007199254740991);
    expect(v[2]).toBe(-1);
    expect(typeof v[3]).toBe('number');
  });

  it('reports the offset of a syntax error', () => {
    const doc = '{"magic": "CORE", "entries": [{"a": 1,}]}';
    try {
      parseJson(doc);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(JsonSyntaxError);
      expect((e as JsonSyntaxError).index).toBe(doc.indexOf('}'));
    }
    expect(() => parseJson('{"a": 1} x')).toThrow(/extra data/);
    expect(() => parseJson('')).toThrow(/end of JSON/);
    expect(() => parseJson('"abc')).toThrow(/unterminated/);
  });

  it('hands out entries one at a time, even when "entries" precedes "magic"', async () => {
    const seen: string[] = [];
    const r = await readImageDocument('{"entries": [{"a": 1}, {"b": 2}], "magic": "X", "other": [1]}', {
      magic: (m) => void seen.push(`magic ${m}`),
      entry: (e, i) => void seen.push(`${i} ${JSON.stringify(e)}`),
    });
    expect(r.count).toBe(2);
    expect(seen).toEqual(['magic X', '0 {"a":1}', '1 {"b":2}']);
  });

  it('rejects documents that are not crit images', async () => {
    const h = { magic: () => undefined, entry: () => undefined };
    await expect(readImageDocument('[1]', h)).rejects.toThrow(/expecting '\{'/);
    await expect(readImageDocument('{"entries": []}', h)).rejects.toThrow(/no "magic"/);
    await expect(readImageDocument('{"magic": "X"}', h)).rejects.toThrow(/no "entries"/);
    await expect(readImageDocument('{"magic": 5, "entries": []}', h)).rejects.toThrow(/must be a string/);
  });
});

describe('python string and bytes forms', () => {
  it('escapes like ensure_ascii', () => {
    expect(pyString('a\u00e9\n')).toBe('"a\\u00e9\\n"');
    expect(pyString('\u{1f600}')).toBe('"\\ud83d\\ude00"');
  });
  it('base64 like base64.encodebytes (76-char lines, trailing newline)', () => {
    expect(encodeBytes(Buffer.alloc(0))).toBe('');
    const s = encodeBytes(Buffer.alloc(100, 1));
    expect(s.split('\n').map((l) => l.length)).toEqual([76, 60, 0]);
  });
});
