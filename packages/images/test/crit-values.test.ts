import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { b64encode, decodeDev, encodeDev, ipFromString, ipToString, mapFlags, FLAG_TABLES, pyInt, qpDecode, qpEncode, unmapFlags } from '../src/crit-values.js';
import { parseJsonExact, pyDump, pyString } from '../src/pyjson.js';

const python = '/usr/bin/python3';
const havePython = existsSync(python);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run a Python snippet over a JSON list of inputs; it prints a JSON list of outputs. */
function py(code: string, inputs: unknown): any[] {
  const script = `import json, sys, base64, quopri, os, ipaddress, socket\nxs = json.load(sys.stdin)\nout = []\n${code}\nprint(json.dumps(out))`;
  return JSON.parse(execFileSync(python, ['-c', script], { input: JSON.stringify(inputs) }).toString());
}

describe.skipIf(!havePython)('crit value conversions agree with Python (the stdlib crit uses)', () => {
  const r = rng(7);
  const blobs = Array.from({ length: 200 }, (_, i) => {
    const n = i < 20 ? i : Math.floor(r() * 300);
    // unix socket names: mostly printable, some NULs (abstract names), spaces, newlines, '=' and '.'
    const alphabet = [0, 0x20, 0x09, 0x0a, 0x0d, 0x2e, 0x3d, 0x7f, 0xff, ...Array.from({ length: 60 }, (_, k) => 0x30 + k)];
    return Buffer.from(Array.from({ length: n }, () => (r() < 0.2 ? Math.floor(r() * 256) : alphabet[Math.floor(r() * alphabet.length)]!)));
  });

  it('quoted-printable (quopri.encodestring / decodestring)', () => {
    const hex = blobs.map((b) => b.toString('hex'));
    const enc = py('for h in xs: out.append(quopri.encodestring(bytes.fromhex(h)).decode())', hex);
    // quoted-printable text mode is not bijective (line ends); decode must match Python's decode
    const dec = py('for s in xs: out.append(quopri.decodestring(s.encode()).hex())', enc);
    blobs.forEach((b, i) => {
      expect(qpEncode(b)).toBe(enc[i]);
      expect(qpDecode(enc[i]).toString('hex')).toBe(dec[i]);
    });
    expect(qpDecode(qpEncode(Buffer.from('\0/tmp/sock name=1'))).toString()).toBe('\0/tmp/sock name=1');
  });

  it('base64 (base64.encodebytes)', () => {
    const enc = py('for h in xs: out.append(base64.encodebytes(bytes.fromhex(h)).decode())', blobs.map((b) => b.toString('hex')));
    blobs.forEach((b, i) => expect(b64encode(b)).toBe(enc[i]));
  });

  it('IPv4/IPv6 addresses (socket.ntohl + ipaddress compressed)', () => {
    const words: number[][] = [];
    for (let i = 0; i < 300; i++) {
      const n = i % 3 === 0 ? 1 : 4;
      // many zero words so that "::" compression is exercised
      words.push(Array.from({ length: n }, () => (r() < 0.4 ? 0 : r() < 0.3 ? (Math.floor(r() * 0x10000) << 16) >>> 0 : Math.floor(r() * 2 ** 32))));
    }
    const exp = py(
      `for v in xs:
    if len(v) == 1: out.append(ipaddress.IPv4Address(socket.ntohl(v[0])).compressed)
    else: out.append(ipaddress.IPv6Address((socket.ntohl(v[0]) << 96) + (socket.ntohl(v[1]) << 64) + (socket.ntohl(v[2]) << 32) + socket.ntohl(v[3])).compressed)`,
      words,
    );
    words.forEach((w, i) => {
      expect(ipToString(w)).toBe(exp[i]);
      expect(ipFromString(exp[i])).toEqual(w.map((x) => x >>> 0));
    });
  });

  it('device numbers (os.major/os.minor for odev, 20 minor bits for dev)', () => {
    const devs = Array.from({ length: 100 }, () => BigInt(Math.floor(r() * 2 ** 32)) * (r() < 0.3 ? 4096n : 1n));
    const exp = py('for d in xs: out.append("%d:%d" % (os.major(d), os.minor(d)))', devs.map(Number));
    devs.forEach((d, i) => {
      expect(decodeDev(d, true)).toBe(exp[i]);
      expect(encodeDev(exp[i], true)).toBe(d);
      const s = decodeDev(d, false);
      expect(encodeDev(s, false)).toBe(d);
    });
  });

  it('JSON text of strings and nested values (json.dumps, ensure_ascii, indent=4)', () => {
    const strings = ['plain', 'quote " back \\ slash', 'tab\tnl\ncr\r\x01\x1f\x7f', 'ünïcødé ☃ 𝄞', '/tmp/criu-fixtures/run', ''];
    const exp = py('for s in xs: out.append(json.dumps(s))', strings);
    strings.forEach((s, i) => expect(pyString(s)).toBe(exp[i]));
    const doc = { a: [1, { b: [] as unknown[], c: {} }, 'x'], d: true, e: null, f: [[1, 2], []] };
    const [compact, indented] = py('out.append(json.dumps(xs)); out.append(json.dumps(xs, indent=4))', doc);
    expect(pyDump(doc)).toBe(compact);
    expect(pyDump(doc, '    ')).toBe(indented);
  });
});

describe('flags, ints and exact JSON parsing', () => {
  it('maps flags like crit (unknown bits as hex, 0 as "")', () => {
    expect(mapFlags(0x7n, FLAG_TABLES['mmap.prot']!)).toBe('PROT_READ | PROT_WRITE | PROT_EXEC');
    expect(mapFlags(0x22n | 0x4000n, FLAG_TABLES['mmap.flags']!)).toBe('MAP_PRIVATE | MAP_ANON | 0x4000');
    expect(mapFlags(0n, FLAG_TABLES['mmap.status']!)).toBe('');
    // names CRIU 4.2 has and Debian's 3.17 lacks
    expect(mapFlags(0x8n, FLAG_TABLES['mmap.flags']!)).toBe('MAP_DROPPABLE');
    expect(mapFlags((1n << 14n) | (1n << 15n) | (1n << 17n) | (1n << 31n), FLAG_TABLES['mmap.status']!)).toBe('VMA_AREA_MEMFD | VMA_AREA_SHSTK | VMA_AREA_UPROBES | VMA_UNSUPP');
    expect(unmapFlags('', FLAG_TABLES['mmap.status']!)).toBe(0n);
    expect(unmapFlags('MAP_PRIVATE | MAP_ANON | 0x4000', FLAG_TABLES['mmap.flags']!)).toBe(0x4022n);
  });

  it("reads integers like Python's int(s, 0)", () => {
    expect(pyInt('0x1F')).toBe(31n);
    expect(pyInt(' -12 ')).toBe(-12n);
    expect(pyInt('0o17')).toBe(15n);
    expect(pyInt('0b101')).toBe(5n);
    expect(pyInt('1_000')).toBe(1000n);
    expect(pyInt('012')).toBeNull();
    expect(pyInt('0xffffffffff600000')).toBe(0xffffffffff600000n);
    expect(pyInt('')).toBeNull();
  });

  it('parses JSON keeping integers above 2^53 exact', () => {
    const v = parseJsonExact('{"a": 18446744073709551615, "b": [9007199254740993, -9223372036854775808, 1.5, 3], "c": "\\u00e9"}') as any;
    expect(v.a).toBe(18446744073709551615n);
    expect(v.b).toEqual([9007199254740993n, -9223372036854775808n, 1.5, 3]);
    expect(v.c).toBe('é');
  });
});
