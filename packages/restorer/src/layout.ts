/**
 * The TypeScript view of layout.json, the one description of the plan block the blob reads
 * (the C header is generated from the same file). Every field is a little-endian u64.
 */
import layout from '../layout.json';

type Records = typeof layout.records;
export type RecordName = keyof Records;

export const PLAN_MAGIC = BigInt(layout.magic);
export const PLAN_VERSION = BigInt(layout.version);
export const STEPS: readonly string[] = layout.steps;

export const CONST: Readonly<Record<keyof typeof layout.constants, bigint>> = Object.fromEntries(
  Object.entries(layout.constants).map(([k, v]) => [k, BigInt(v)]),
) as Record<keyof typeof layout.constants, bigint>;

export function fieldsOf(name: RecordName): readonly string[] {
  return layout.records[name];
}

export function recordSize(name: RecordName): number {
  return layout.records[name].length * 8;
}

export function fieldOffset(name: RecordName, field: string): number {
  const i = layout.records[name].indexOf(field);
  if (i < 0) throw new Error(`plan layout: ${name} has no field ${field}`);
  return i * 8;
}

export type RecordValues = Record<string, bigint | number | boolean | undefined>;

/** Number.MAX_SAFE_INTEGER as a bigint: a bigint up to it converts to a number exactly */
export const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** each record's field names as a set, made at first use */
const fieldSets = new Map<RecordName, Set<string>>();

/** Every key of `values` must be a field of record `name`. */
function checkFields(name: RecordName, values: RecordValues): void {
  const known = fieldSets.get(name) ?? fieldSets.set(name, new Set(layout.records[name])).get(name)!;
  for (const k in values) {
    if (!known.has(k)) throw new Error(`plan layout: ${name} has no field ${k}`);
  }
}

/** From this many records of one kind on, records() writes them through bulkWriter. */
const BULK = 64;
const bulkWriters = new Map<RecordName, (w: PlanWriter, off: number, v: RecordValues) => void>();

/**
 * A function writing every field of record `name` from an object, each read by its own name
 * (made once per record kind, from layout.json's field names only), into records' place just
 * taken from the block (writeRecords), which is zero: the fields that are zero are not written.
 */
function bulkWriter(name: RecordName): (w: PlanWriter, off: number, v: RecordValues) => void {
  let f = bulkWriters.get(name);
  if (!f) {
    // (a zero field is not written: the records' place was just taken, and is zero already)
    const body = 'let x;\n' + layout.records[name].map((k, i) => `x = v[${JSON.stringify(k)}]; if (x !== undefined && x !== 0 && x !== 0n && x !== false) w.u64(off + ${i * 8}, x);`).join('\n');
    f = new Function('w', 'off', 'v', body) as (w: PlanWriter, off: number, v: RecordValues) => void;
    bulkWriters.set(name, f);
  }
  return f;
}

/** An append-only writer for the plan block; offsets are from the block start. */
export class PlanWriter {
  private buf: Buffer;
  // (the fields' words through a DataView: Buffer's writeUInt32LE checks its arguments at each call)
  private view: DataView;
  private len = 0;

  /**
   * `size`: the bytes the block is expected to take (encodeBody's estimate): a plan of 60,000
   * areas (10 MB) grown by doubling from 64 KiB ended in 16 MB, with the 8 MB before it still
   * held at the last copy (the restore's peak RSS).
   */
  constructor(size = 1 << 16) {
    this.buf = Buffer.alloc(Math.max(64, size));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  get size(): number {
    return this.len;
  }

  alloc(bytes: number, align = 8): number {
    const off = Math.ceil(this.len / align) * align;
    const end = off + bytes;
    if (end > this.buf.length) {
      let n = this.buf.length;
      while (n < end) n *= 2;
      const b = Buffer.alloc(n);
      this.buf.copy(b, 0, 0, this.len);
      this.buf = b;
      this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    this.len = end;
    return off;
  }

  record(name: RecordName, values: RecordValues, at?: number): number {
    const fields = layout.records[name];
    checkFields(name, values);
    const off = at ?? this.alloc(fields.length * 8);
    for (let i = 0; i < fields.length; i++) this.u64(off + i * 8, values[fields[i]!]);
    return off;
  }

  /**
   * One field's 64 bits, two's complement: a bigint as it is (DataView's setBigUint64, ~1.6×
   * faster here than comparing it to the safe range and writing two words of its Number), a
   * safe integer as two 32-bit words, anything else through BigInt (which refuses a fraction,
   * as before). (A plan has a field per word: a restore of 60,000 mappings writes a million;
   * Buffer's writeBigUInt64LE is BigInt arithmetic, several BigInts for each.)
   */
  u64(at: number, v: bigint | number | boolean | undefined): void {
    if (typeof v === 'bigint') {
      // (setBigUint64 takes v modulo 2^64: a negative one as its two's complement)
      this.view.setBigUint64(at, v, true);
      return;
    }
    if (v === undefined || v === false) v = 0;
    else if (v === true) v = 1;
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const hi = Math.floor(v / 0x1_0000_0000);
      this.view.setUint32(at, v - hi * 0x1_0000_0000, true);
      this.view.setUint32(at + 4, hi >>> 0, true);
      return;
    }
    this.view.setBigUint64(at, BigInt(v), true);
  }

  /** Records of one kind from objects whose keys are all the record's fields (each one checked). */
  records(name: RecordName, list: readonly object[]): number {
    return this.writeRecords(name, list.length, (i) => list[i] as RecordValues, true);
  }

  /**
   * `n` records of one kind, record i's values made by `make(i)` just before it is written (a
   * task's 60,000 areas: no array of their values held at once; each object dies young). `make`
   * may write into the block itself (a string's offset): the records' place is taken first.
   * `make` returns objects of one set of keys (one object literal): the first one's keys are
   * checked against the layout (a key of none of its fields throws), not each one's.
   */
  recordsOf(name: RecordName, n: number, make: (i: number) => RecordValues): number {
    return this.writeRecords(name, n, make, false);
  }

  private writeRecords(name: RecordName, n: number, make: (i: number) => RecordValues, checkEach: boolean): number {
    const size = recordSize(name);
    const off = this.alloc(Math.max(1, n) * size);
    // (many records — a task's areas, page runs — are written each field read by its name in
    // code made for this record, one load site per field, instead of a lookup by a varying key)
    const write = n < BULK ? undefined : bulkWriter(name);
    for (let i = 0; i < n; i++) {
      const v = make(i);
      if (write) {
        if (checkEach || i === 0) checkFields(name, v);
        write(this, off + i * size, v);
      } else this.record(name, v, off + i * size);
    }
    return off;
  }

  string(s: string | undefined): number {
    if (s === undefined) return 0;
    const b = Buffer.from(s + '\0', 'utf8');
    const off = this.alloc(b.length, 1);
    b.copy(this.buf, off);
    return off;
  }

  bytes(b: Buffer | Uint8Array | undefined, align = 64): number {
    if (!b || b.length === 0) return 0;
    const off = this.alloc(b.length, align);
    Buffer.from(b.buffer, b.byteOffset, b.byteLength).copy(this.buf, off);
    return off;
  }

  u64s(vals: readonly bigint[]): number {
    const off = this.alloc(Math.max(1, vals.length) * 8);
    vals.forEach((v, i) => this.u64(off + i * 8, v));
    return off;
  }

  /** The block written so far: a view of the writer's buffer, not a copy (a plan of 60,000 areas is ~10 MB). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
