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
import { EntryParser, parseHeader, type Entry, type ParseContext } from './framing.js';
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

/** Read the image file at `path` as columns (see decodeImageColumns). */
export function readImageColumns(path: string, opts: Omit<ColumnsOptions, 'file'>): ImageColumns {
  return decodeImageColumns(readFileSync(path), { ...opts, file: path });
}

/** Decode an image held in memory as columns of the asked fields. */
export function decodeImageColumns(buf: Buffer, opts: ColumnsOptions): ImageColumns {
  const ctx: ParseContext = { file: opts.file, base: 0 };
  const h = parseHeader(buf, true, ctx, opts.name)!;
  const parser = new EntryParser(h.info, ctx);
  const spans: number[] = [];
  // (frame() checks every length word, as a whole decode would, and refuses kinds with payloads)
  const end = parser.frame(buf, h.length, buf.length, true, spans);
  // (frame() stops before a broken entry once it has found some: the call from there throws its error)
  if (end !== buf.length) parser.frame(buf, end, buf.length, true, []);
  let first = 0;
  let head: Entry | undefined;
  if (h.info.firstMessage && spans.length > 0) {
    head = parser.decodeAt(buf, spans[0]!, spans[1]!, 0);
    first = 1;
  }
  const spec = parser.mainSpec;
  const wanted: FieldSpec[] = opts.fields.map((n) => {
    const f = spec.byName.get(n);
    if (!f) throw new Error(`${spec.name} has no field ${n}`);
    if (f.repeated || !VARINT_TYPES.has(f.type)) throw new Error(`${spec.name}.${n} is not a single integer field read as a varint`);
    return f;
  });
  // by field number: the column index + 1 (0: not asked)
  const slot = new Map<number, number>();
  wanted.forEach((f, k) => slot.set(f.id, k + 1));
  const required = spec.required.map((f) => f.id);
  const count = spans.length / 2 - first;
  const cols = wanted.map(() => new Float64Array(count).fill(NaN));
  const seen = new Float64Array(required.length);
  const r = new Reader(buf, 0);
  for (let i = 0; i < count; i++) {
    const start = spans[2 * (i + first)]!;
    const stop = spans[2 * (i + first) + 1]!;
    r.pos = start;
    seen.fill(0);
    try {
      while (r.pos < stop) {
        const key = r.varint(stop) >>> 0;
        if (r.hi !== 0) throw new CodecError('field key longer than 32 bits', r.pos);
        const id = key >>> 3;
        const wt = key & 7;
        for (let q = 0; q < required.length; q++) if (required[q] === id) seen[q] = 1;
        const k = slot.get(id);
        if (k === undefined) {
          skipField(r, wt, stop);
          continue;
        }
        const f = wanted[k - 1]!;
        if (wt !== 0) throw new CodecError(`field ${f.name}: wire type ${wt}, not a varint`, r.pos);
        const lo = r.varint(stop) >>> 0;
        const hi = r.hi >>> 0;
        let v: number;
        if (f.type === FT.BOOL) v = lo !== 0 || hi !== 0 ? 1 : 0;
        else if (f.type === FT.UINT64) {
          v = hi * TWO32 + lo;
          // (above 2^53 a double keeps only some of the bits: refuse what it would round)
          if (hi >= 0x200000 && BigInt(v) !== ((BigInt(hi) << 32n) | BigInt(lo))) throw new CodecError(`field ${f.name}: ${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)} is not exact as a number`, r.pos);
        } else {
          // uint32, int32 and enums: the low 32 bits (int32 and enums negative: refused, as no column holds them)
          if (f.type !== FT.UINT32 && (lo | 0) < 0) throw new CodecError(`field ${f.name}: negative value ${lo | 0}`, r.pos);
          v = lo;
        }
        cols[k - 1]![i] = v;
      }
      if (r.pos !== stop) throw new CodecError('field runs past the end of the message', stop);
      for (let q = 0; q < required.length; q++) if (!seen[q]) throw new CodecError(`${spec.name}: required field ${spec.required[q]!.name} is missing`, stop);
    } catch (e) {
      if (e instanceof CodecError) throw imageError(ImageErrorCode.BAD_ENTRY, { file: opts.file, offset: e.pos }, `entry ${i + first} (${spec.name}, ${stop - start} bytes at ${start - 4}): ${e.message}`);
      throw e;
    }
  }
  const columns: Record<string, Float64Array> = {};
  wanted.forEach((f, k) => (columns[f.name] = cols[k]!));
  return { magic: h.info.name, ...(head ? { head } : {}), count, columns };
}
