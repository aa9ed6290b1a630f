/**
 * Reading many small entries of one kind as columns of plain numbers: for each asked field, a
 * Float64Array with one value per entry (NaN where the entry does not have it). No object and no
 * bigint is made per entry: a pagemap image of a 4 GiB area holds ~4,600 entries, and decoding
 * them whole (an object each, bigint addresses) was most of the time a lazy restore spent before
 * its tasks ran. Only integer fields read as varints (uint32, uint64, int32 ≥ 0, bool, enum) can
 * be asked for; a value a double cannot hold exactly (above 2^53 and not a multiple of the
 * power of two it needs, e.g. an unaligned kernel address) is refused as a bad entry rather than
 * rounded. Page-aligned addresses are always exact: a multiple of 4096 below 2^64 is.
 */
import { readFileSync } from 'node:fs';
import { CodecError, Reader, skipField } from './codec.js';
import { imageError, ImageErrorCode } from './errors.js';
import { EntryParser, MAX_ENTRY_BYTES, parseHeader, type Entry, type ParseContext } from './framing.js';
import { FT, type FieldSpec } from './schema.js';

export interface ImageColumns {
  magic: string;
  /** The first entry, decoded whole, for kinds whose first entry is a head of its own (pagemap_head). */
  head?: Entry;
  /** Entries in the columns (the head not counted). */
  count: number;
  /** Per asked field, its value in each entry; NaN: not in that entry. */
  columns: Record<string, Float64Array>;
}

export interface ColumnsOptions {
  /** The image's kind (crit name, e.g. 'PAGEMAP'); a different magic is IMG_BAD_MAGIC. */
  name: string;
  /** Fields of the entries' message to read (integer fields read as varints). */
  fields: readonly string[];
  /** File name for error messages. */
  file?: string;
}

const VARINT_TYPES: ReadonlySet<number> = new Set([FT.UINT32, FT.UINT64, FT.INT32, FT.BOOL, FT.ENUM]);
const TWO32 = 2 ** 32;
const TWO64 = 2 ** 64;
const MAX_EXACT = Number.MAX_SAFE_INTEGER;

/** Read the image file at `path` as columns (see decodeImageColumns). */
export function readImageColumns(path: string, opts: Omit<ColumnsOptions, 'file'>): ImageColumns {
  return decodeImageColumns(readFileSync(path), { ...opts, file: path });
}

/** Decode an image held in memory as columns of the asked fields. */
export function decodeImageColumns(buf: Buffer, opts: ColumnsOptions): ImageColumns {
  const ctx: ParseContext = { file: opts.file, base: 0 };
  const h = parseHeader(buf, true, ctx, opts.name)!;
  const parser = new EntryParser(h.info, ctx);
  if (h.info.payload !== 'none' && h.info.payload !== 'pagemap') throw new Error(`${h.info.name} entries carry payloads: not read as columns`);
  const size = buf.length;
  // A length word that is not right: frame() from there says what is wrong, as a whole decode would.
  const broken = (off: number, index: number): never => {
    parser.index = index;
    parser.frame(buf, off, size, true, []);
    throw new Error(`${opts.file ?? h.info.name}: entry ${index} at ${off} refused, but frame() found it whole`);
  };
  const lengthAt = (off: number, index: number): number => {
    if (size - off < 4) broken(off, index);
    const len = buf[off]! + buf[off + 1]! * 0x100 + buf[off + 2]! * 0x10000 + buf[off + 3]! * 0x1000000;
    if (len > MAX_ENTRY_BYTES || len > size - off - 4) broken(off, index);
    return len;
  };
  let off = h.length;
  let first = 0;
  let head: Entry | undefined;
  if (h.info.firstMessage && off < size) {
    const len = lengthAt(off, 0);
    head = parser.decodeAt(buf, off + 4, off + 4 + len, 0);
    off += 4 + len;
    first = 1;
  }
  const spec = parser.mainSpec;
  const wanted: FieldSpec[] = opts.fields.map((n) => {
    const f = spec.byName.get(n);
    if (!f) throw new Error(`${spec.name} has no field ${n}`);
    if (f.repeated || !VARINT_TYPES.has(f.type)) throw new Error(`${spec.name}.${n} is not a single integer field read as a varint`);
    return f;
  });
  // by field number: its column (-1: not asked), its type, its index among the required fields
  const maxId = spec.fields.reduce((m, f) => Math.max(m, f.id), 0);
  const col = new Int32Array(maxId + 1).fill(-1);
  const type = new Int32Array(maxId + 1);
  const req = new Int32Array(maxId + 1).fill(-1);
  wanted.forEach((f, k) => ((col[f.id] = k), (type[f.id] = f.type)));
  spec.required.forEach((f, q) => (req[f.id] = q));
  const nreq = spec.required.length;
  // (room for as many entries as there can be: each takes at least its 4-byte length word)
  const room = Math.ceil((size - off) / 4);
  const cols = wanted.map(() => new Float64Array(room).fill(NaN));
  // (per required field, the last entry that had it: no clearing per entry)
  const seenIn = new Float64Array(nreq).fill(-1);
  const r = new Reader(buf, 0);
  // One loop, varints read in place as doubles (exact up to 2^53; beyond, checked on the side):
  // it runs once per restore, mostly before V8 has optimised it, where every call costs.
  let i = 0;
  for (; off < size; i++) {
    // (inline: a call per entry is what costs while this loop is not optimised yet)
    let len: number;
    if (size - off >= 4 && (len = buf[off]! + buf[off + 1]! * 0x100 + buf[off + 2]! * 0x10000 + buf[off + 3]! * 0x1000000) <= size - off - 4 && len <= MAX_ENTRY_BYTES) {
      /* whole */
    } else len = lengthAt(off, i + first);
    const start = off + 4;
    const stop = start + len;
    off = stop;
    let p = start;
    let seen = 0;
    try {
      while (p < stop) {
        let key = buf[p]!;
        if (key < 0x80) p++;
        else {
          r.pos = p;
          key = r.varint(stop) >>> 0;
          if (r.hi !== 0) throw new CodecError('field key longer than 32 bits', r.pos);
          p = r.pos;
        }
        const id = key >>> 3;
        const wt = key & 7;
        if (id <= maxId && req[id]! >= 0 && seenIn[req[id]!] !== i) {
          seenIn[req[id]!] = i;
          seen++;
        }
        const k = id <= maxId ? col[id]! : -1;
        if (k < 0) {
          r.pos = p;
          skipField(r, wt, stop);
          p = r.pos;
          continue;
        }
        if (wt !== 0) throw new CodecError(`field ${wanted[k]!.name}: wire type ${wt}, not a varint`, p);
        const at = p;
        let v = 0;
        let mul = 1;
        let b = 0x80;
        for (let n = 0; n < 10 && b >= 0x80; n++) {
          if (p >= stop) throw new CodecError('varint runs past the end of the message', p);
          b = buf[p++]!;
          v += (b & 0x7f) * mul;
          mul *= 128;
        }
        if (b >= 0x80) throw new CodecError('varint longer than 10 bytes', p);
        if (v >= TWO64) throw new CodecError(`field ${wanted[k]!.name}: a value over 64 bits, or one a number cannot hold exactly`, at);
        const t = type[id]!;
        if (t === FT.BOOL) v = v !== 0 ? 1 : 0;
        else if (t === FT.UINT64) {
          // (above 2^53 a double keeps only some of the bits: refuse what it would round)
          if (v > MAX_EXACT) {
            r.pos = at;
            const lo = r.varint(stop) >>> 0;
            const exact = (BigInt(r.hi >>> 0) << 32n) | BigInt(lo);
            if (BigInt(v) !== exact) throw new CodecError(`field ${wanted[k]!.name}: ${exact.toString(16)} is not exact as a number`, at);
          }
        } else if (t === FT.UINT32) {
          // (the low 32 bits, as protobuf reads a uint32)
          if (v >= TWO32) {
            r.pos = at;
            v = r.varint(stop) >>> 0;
          }
        } else if (v >= 2 ** 31) throw new CodecError(`field ${wanted[k]!.name}: negative or out of range`, at); // int32, enum: no column holds those
        cols[k]![i] = v;
      }
      if (p !== stop) throw new CodecError('field runs past the end of the message', stop);
      if (seen !== nreq) {
        const miss = spec.required.find((_, q) => seenIn[q] !== i)!;
        throw new CodecError(`${spec.name}: required field ${miss.name} is missing`, stop);
      }
    } catch (e) {
      if (e instanceof CodecError) throw imageError(ImageErrorCode.BAD_ENTRY, { file: opts.file, offset: e.pos }, `entry ${i + first} (${spec.name}, ${stop - start} bytes at ${start - 4}): ${e.message}`);
      throw e;
    }
  }
  const count = i;
  const columns: Record<string, Float64Array> = {};
  wanted.forEach((f, k) => (columns[f.name] = cols[k]!.subarray(0, count)));
  return { magic: h.info.name, ...(head ? { head } : {}), count, columns };
}
