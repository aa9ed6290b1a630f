import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { critJsonChunks, decodeImage, encodeImage, magicByName, magicHeader, openImage, toCritJson } from '../src/index.js';
import { Reader } from '../src/codec.js';
import { AsciiOut, messageText, rendererOf } from '../src/crit-text.js';
import { messageSpec } from '../src/schema.js';
import { fixtureImages } from './helpers/fixtures.js';

/**
 * crit decode renders entries straight from their protobuf bytes (crit-text.ts rendererOf) and
 * falls back to decoding objects when it declines. These tests hold the fast path to the object
 * path: same text for every fixture entry, a decline (never different text) for wire forms it
 * does not take, and the decoder's own errors for damaged entries.
 */

const tmp = mkdtempSync(join(tmpdir(), 'crit-render-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

/** The stream (fast) path's text, or its error message. */
async function streamText(bytes: Buffer, pretty: boolean): Promise<string> {
  const file = join(tmp, `img-${seq++}.img`);
  writeFileSync(file, bytes);
  try {
    let s = '';
    for await (const c of critJsonChunks(openImage(file, { chunkSize: 64 }), { pretty, chunk: 50 })) s += c;
    return s;
  } catch (e) {
    return `error: ${(e as Error).message.replace(file, 'FILE')}`;
  }
}

/** The object path's text, or its error message. */
function objectText(bytes: Buffer, pretty: boolean): string {
  try {
    return toCritJson(decodeImage(bytes, { file: 'FILE' }), { pretty });
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

/** An image of `kind` from raw message bodies (no payloads). */
function imageOf(kind: string, bodies: Buffer[]): Buffer {
  const parts: Buffer[] = [magicHeader(magicByName(kind)!)];
  for (const b of bodies) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

const varint = (v: bigint): number[] => {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let byte = Number(x & 0x7fn);
    x >>= 7n;
    if (x) byte |= 0x80;
    out.push(byte);
  } while (x);
  return out;
};
/** A varint field (field number, value). */
const vf = (id: number, v: bigint | number): number[] => [...varint(BigInt(id * 8)), ...varint(BigInt(v))];
const msg = (...fields: number[][]) => Buffer.from(fields.flat());

describe('fast crit text from protobuf bytes', () => {
  const images = fixtureImages();

  it.skipIf(images.length === 0)('renders every fixture entry itself, with the object path\'s text (plain and --pretty)', () => {
    let rendered = 0;
    for (const img of images) {
      const info = magicByName(img.kind);
      if (!info || info.message === null || (info.payload !== 'none' && info.payload !== 'pagemap')) continue;
      const buf = readFileSync(img.path);
      const whole = decodeImage(buf);
      let off = magicHeader(info).length;
      for (let i = 0; off < buf.length; i++) {
        const len = buf.readUInt32LE(off);
        const spec = messageSpec(i === 0 && info.firstMessage ? info.firstMessage : info.message!);
        for (const pretty of [false, true]) {
          const o = new AsciiOut(64);
          const r = new Reader(buf, off + 4);
          expect(rendererOf(spec, pretty ? 1 : 0)(r, off + 4 + len, 2, o), `${img.label} entry ${i}`).toBe(true);
          const want = messageText(spec, whole.entries[i] as Record<string, unknown>, pretty, false, pretty ? '        ' : '', undefined);
          expect(o.take().toString('latin1')).toBe(want);
        }
        rendered++;
        off += 4 + len;
      }
    }
    expect(rendered).toBeGreaterThan(100);
  });

  it('integers at the edges: 0, 2^31, 2^32, 2^53 ± 1, 2^64 - 1, negative int32', async () => {
    const values = [0n, 1n, 9n, 10n, 999999999n, 1000000000n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n];
    const bodies = values.map((v, i) => msg(vf(1, v), vf(2, i), vf(4, i * 3), vf(5, v >> 3n)));
    const img = imageOf('PAGEMAP', [msg(vf(1, 7)), ...bodies]);
    for (const pretty of [false, true]) expect(await streamText(img, pretty)).toBe(objectText(img, pretty));
    // sint32/int32: a negative int32 is a 10-byte varint
    const core = encodeImage({ magic: 'FDINFO', entries: [{ id: 1, flags: 0x8000, type: 'REG', fd: 2147483647 }] });
    for (const pretty of [false, true]) expect(await streamText(core, pretty)).toBe(objectText(core, pretty));
  });

  it('declines, never mis-renders: fields out of order, repeated twice, interleaved repeated, unknown fields', async () => {
    const cases: Buffer[] = [
      msg(vf(2, 5), vf(1, 4), vf(3, 6), vf(4, 7)), // ppid before pid
      msg(vf(1, 4), vf(1, 9), vf(2, 5), vf(3, 6), vf(4, 7)), // pid twice: the last one wins
      msg(vf(1, 4), vf(2, 5), vf(3, 6), vf(4, 7), vf(5, 1), vf(5, 2)), // threads in one run (fast)
      msg(vf(1, 4), vf(2, 5), vf(5, 1), vf(3, 6), vf(5, 2), vf(4, 7)), // threads interleaved
      msg(vf(1, 4), vf(2, 5), vf(3, 6), vf(4, 7), vf(9, 99)), // unknown field 9
      msg(vf(1, 4), vf(2, 5), vf(3, 6), vf(4, 7), [0x2a, 0x02, 0x01, 0x02]), // threads packed
    ];
    for (const body of cases) {
      const img = imageOf('PSTREE', [body]);
      for (const pretty of [false, true]) {
        const text = await streamText(img, pretty);
        expect(text).toBe(objectText(img, pretty));
        expect(text.startsWith('error')).toBe(false);
      }
    }
  });

  it('damaged entries give the decoder\'s errors: missing required field, truncated varint, overlong length', async () => {
    const cases: Buffer[] = [
      msg(vf(1, 4), vf(2, 5), vf(3, 6)), // no sid
      Buffer.from([0x08, 0x84]), // varint cut short
      Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11-byte varint
      Buffer.from([0x0a, 0x7f, 0x01]), // pid with a length-delimited wire type and a length past the end
      Buffer.from([0x00]), // field number 0
    ];
    for (const body of cases) {
      const img = imageOf('PSTREE', [msg(vf(1, 1), vf(2, 0), vf(3, 1), vf(4, 1)), body]);
      for (const pretty of [false, true]) {
        const text = await streamText(img, pretty);
        expect(text).toMatch(/^error: /);
        expect(text).toBe(objectText(img, pretty));
      }
    }
  });

  it.skipIf(images.length === 0)('fuzz: mutated fixture entries read the same both ways (text or error)', async () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const pool = images.filter((i) => {
      const info = magicByName(i.kind);
      return info && info.message !== null && (info.payload === 'none' || info.payload === 'pagemap');
    });
    let errors = 0;
    for (let round = 0; round < 300; round++) {
      const img = pool[rand(pool.length)]!;
      const b = Buffer.from(readFileSync(img.path));
      const start = magicHeader(magicByName(img.kind)!).length + 4; // keep the magic and first length
      if (b.length <= start) continue;
      for (let k = 0, n = 1 + rand(3); k < n; k++) b[start + rand(b.length - start)] = rand(256);
      const pretty = rand(2) === 1;
      const want = objectText(b, pretty);
      if (want.startsWith('error')) errors++;
      expect(await streamText(b, pretty), `${img.label} round ${round}`).toBe(want);
    }
    expect(errors).toBeGreaterThan(10);
  });
});
