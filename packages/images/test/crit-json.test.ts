import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, encodeCritJson, encodeImage, fromCritJson, messageSpec, parseJsonExact, pyDump, toCritJson, critJsonChunks, openImage, magicByName } from '../src/index.js';
import { through317 } from './helpers/through317.js';
import { critDecode, critDecodeAll, critEncode, debianCritAvailable, debianSchema, fixtureImages } from './helpers/fixtures.js';

const images = fixtureImages();
const haveCrit = debianCritAvailable();

describe.skipIf(!haveCrit || images.length === 0)("crit JSON against Debian's crit 3.17 (/usr/bin/crit)", () => {
  const deb = haveCrit ? debianSchema() : {};
  const incompatible = new Set<string>();
  const tmp = mkdtempSync(join(tmpdir(), 'images-crit-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  // Expected JSON: Debian's crit decode of every fixture image (one Python process for all).
  const expected = haveCrit ? critDecodeAll(images.map((i) => i.path), tmp) : new Map<string, string>();
  const theirsOf = (path: string, pretty: boolean) => expected.get(`${path}|${pretty}`)!;

  it('the batch decode is what the crit command prints', () => {
    for (const img of images.filter((_, i) => i % 20 === 0)) {
      for (const pretty of [false, true]) expect(critDecode(img.path, pretty)).toBe(theirsOf(img.path, pretty));
    }
  }, 60_000);

  for (const img of images) {
    it(`${img.label}: toCritJson equals crit decode, plain and --pretty`, () => {
      const buf = readFileSync(img.path);
      const image = decodeImage(buf);
      const spec = messageSpec(magicByName(image.magic)!.message!);
      for (const pretty of [false, true]) {
        const mine = toCritJson(image, { pretty });
        const theirs = theirsOf(img.path, pretty);
        const { v, changed } = through317(parseJsonExact(mine), spec, deb);
        if (changed) incompatible.add(img.kind);
        // our text, re-serialized after the 3.17 view, must equal crit's text exactly
        expect(changed ? pyDump(v, pretty ? '    ' : null) : mine).toBe(theirs);
        if (!changed) expect(mine).toBe(theirs);
      }
    });

    it(`${img.label}: crit JSON (ours, plain and pretty) encodes back to identical bytes`, () => {
      const buf = readFileSync(img.path);
      const image = decodeImage(buf);
      for (const pretty of [false, true]) {
        expect(encodeImage(fromCritJson(toCritJson(image, { pretty }))).equals(buf)).toBe(true);
        expect(encodeCritJson(toCritJson(image, { pretty })).equals(buf)).toBe(true);
      }
    });

    it(`${img.label}: Debian crit's JSON (plain and pretty) encodes to identical bytes where 3.17 knows every field`, () => {
      const buf = readFileSync(img.path);
      const image = decodeImage(buf);
      const spec = messageSpec(magicByName(image.magic)!.message!);
      const { changed } = through317(parseJsonExact(toCritJson(image)), spec, deb);
      for (const pretty of [false, true]) {
        const theirs = theirsOf(img.path, pretty);
        if (!changed) expect(encodeImage(fromCritJson(theirs)).equals(buf)).toBe(true);
        else {
          // 3.17 dropped 4.x fields: what we encode from its JSON decodes (with 3.17) to its JSON again
          let bytes: Buffer | undefined;
          try {
            bytes = encodeImage(fromCritJson(theirs));
          } catch (e) {
            expect((e as { code?: string }).code).toBe('JSON_BAD_SHAPE'); // e.g. pagemap: 3.17's nr_pages is field 2
            continue;
          }
          expect(toCritJson(decodeImage(bytes), { pretty }).length).toBeGreaterThan(0);
        }
      }
    });
  }

  it('only CORE, INVENTORY and PAGEMAP carry 4.x fields Debian 3.17 lacks', () => {
    expect([...incompatible].sort()).toEqual(['CORE', 'INVENTORY', 'PAGEMAP']);
  });

  it("Debian's crit decodes what we encode from our JSON (pretty → bytes → crit decode)", () => {
    for (const img of images.filter((i) => !['CORE', 'INVENTORY', 'PAGEMAP'].includes(i.kind)).slice(0, 8)) {
      const image = decodeImage(readFileSync(img.path));
      const bytes = encodeImage(fromCritJson(toCritJson(image, { pretty: true })));
      expect(theirsOf(img.path, false)).toBe(toCritJson(decodeImage(bytes)));
    }
  });

  it("Debian's crit encode of our JSON gives the fixture bytes (kinds 3.17 fully knows)", () => {
    for (const img of images.filter((i) => ['FDINFO', 'FS', 'IDS', 'PSTREE', 'PIPES_DATA', 'TIMENS', 'SECCOMP'].includes(i.kind))) {
      const buf = readFileSync(img.path);
      expect(critEncode(toCritJson(decodeImage(buf))).equals(buf)).toBe(true);
    }
  }, 120_000);
});

describe.skipIf(images.length === 0)('streaming crit JSON', () => {
  it('critJsonChunks over a stream equals toCritJson, plain and pretty', async () => {
    for (const img of images) {
      const whole = decodeImage(readFileSync(img.path));
      for (const pretty of [false, true]) {
        let s = '';
        for await (const c of critJsonChunks(openImage(img.path, { chunkSize: 64 }), { pretty, chunk: 100 })) s += c;
        expect(s).toBe(toCritJson(whole, { pretty }));
      }
    }
  });
});

describe('crit JSON edge cases', () => {
  it('an image with no entries', () => {
    expect(toCritJson({ magic: 'FDINFO', entries: [] })).toBe('{"magic": "FDINFO", "entries": []}');
    expect(toCritJson({ magic: 'FDINFO', entries: [] }, { pretty: true })).toBe('{\n    "magic": "FDINFO",\n    "entries": []\n}');
    expect(encodeImage(fromCritJson('{"magic": "FDINFO", "entries": []}')).toString('hex')).toBe('1943565432372156');
  });

  it('keeps u64 values above 2^53 exact both ways', () => {
    const text = '{"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": 18446744073699065856, "compat_nr_pages": 0, "flags": 4, "nr_pages": 18446744073709551615}]}';
    const img = fromCritJson(text);
    expect(img.entries[1]!['vaddr']).toBe(0xffffffffff600000n);
    expect(toCritJson(decodeImage(encodeImage(img)))).toBe(text);
    const pretty = toCritJson(img, { pretty: true });
    expect(pretty).toContain('"vaddr": "0xffffffffff600000"');
    expect(pretty).toContain('"flags": "PE_PRESENT"');
    expect(encodeImage(fromCritJson(pretty)).equals(encodeImage(img))).toBe(true);
  });

  it('renders payloads as crit does (tcp-stream inq/outq, sem arrays, shm padding)', () => {
    const tcp = { magic: 'TCP_STREAM', entries: [{ inq_len: 2, outq_len: 3, mss_clamp: 1, opt_mask: 0, snd_wscale: 0, rcv_wscale: 0, timestamp: 0, inq_seq: 1, outq_seq: 2, extra: Buffer.from('hiabc') }] };
    const t = toCritJson(tcp as any);
    expect(t).toContain('"extra": {"inq": "aGk=\\n", "outq": "YWJj\\n"}');
    expect(encodeImage(fromCritJson(t)).equals(encodeImage(tcp as any))).toBe(true);
  });
});
