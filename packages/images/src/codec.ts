import { FT, WIRE, is64, prebuiltDecoder, prebuiltEncoder, type FieldSpec, type MessageSpec } from './schema.js';

/**
 * Schema-driven protobuf (proto2) decoder and encoder.
 * Decoded messages are plain objects keyed by CRIU field names, in wire order:
 * 64-bit integers as bigint, 32-bit as number, enums as their names, bytes as Buffer,
 * repeated fields as arrays. Fields absent on the wire are absent from the object, so
 * decode → encode reproduces the bytes (fields are written in number order, as
 * protobuf-c does; unknown fields are kept under UNKNOWN_FIELDS and written last).
 */

/** Raw bytes of fields the schema does not know, kept for byte-identical re-encoding. */
export const UNKNOWN_FIELDS = Symbol.for('crtools.images.unknownFields');

/** An internal decode/encode failure; the framing layer adds file and offset. */
export class CodecError extends Error {
  constructor(
    message: string,
    readonly pos: number,
    readonly truncated = false,
  ) {
    super(message);
  }
}

const TWO32 = 4294967296;

export class Reader {
  pos = 0;
  hi = 0;
  constructor(
    public buf: Buffer,
    pos: number,
  ) {
    this.pos = pos;
  }

  /** Reads a varint; returns its low 32 bits (signed) and leaves the high 32 in `hi`. */
  varint(end: number): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= end) throw new CodecError('varint runs past the end of the message', p);
    let x = b[p++]!;
    if (x < 0x80) {
      this.pos = p;
      this.hi = 0;
      return x;
    }
    let lo = x & 0x7f;
    let hi = 0;
    let shift = 7;
    for (let i = 1; i < 10; i++) {
      if (p >= end) throw new CodecError('varint runs past the end of the message', p);
      x = b[p++]!;
      if (shift < 28) lo |= (x & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (x & 0x0f) << 28;
        hi |= (x & 0x7f) >> 4;
      } else hi |= (x & 0x7f) << (shift - 32);
      if (x < 0x80) {
        this.pos = p;
        this.hi = hi;
        return lo;
      }
      shift += 7;
    }
    throw new CodecError('varint longer than 10 bytes', p);
  }
}

export function u64(lo: number, hi: number): bigint {
  if (hi === 0) return BigInt(lo >>> 0);
  const h = hi >>> 0;
  if (h < 0x200000) return BigInt(h * TWO32 + (lo >>> 0));
  return (BigInt(h) << 32n) | BigInt(lo >>> 0);
}

export function skipField(r: Reader, wt: number, end: number): void {
  switch (wt) {
    case 0:
      r.varint(end);
      return;
    case 1:
      r.pos += 8;
      break;
    case 2: {
      const len = r.varint(end) >>> 0;
      if (r.hi !== 0) throw new CodecError('length-delimited field longer than 4 GiB', r.pos);
      r.pos += len;
      break;
    }
    case 5:
      r.pos += 4;
      break;
    default:
      throw new CodecError(`invalid wire type ${wt}`, r.pos);
  }
  if (r.pos > end) throw new CodecError('field runs past the end of the message', end);
}

export function readScalar(r: Reader, f: FieldSpec, end: number): unknown {
  const b = r.buf;
  switch (f.type) {
    case FT.INT32:
      return r.varint(end) | 0;
    case FT.UINT32:
      return r.varint(end) >>> 0;
    case FT.SINT32: {
      const v = r.varint(end);
      return (v >>> 1) ^ -(v & 1);
    }
    case FT.INT64: {
      const lo = r.varint(end);
      const u = u64(lo, r.hi);
      return r.hi & 0x80000000 ? BigInt.asIntN(64, u) : u;
    }
    case FT.UINT64: {
      const lo = r.varint(end);
      return u64(lo, r.hi);
    }
    case FT.SINT64: {
      const lo = r.varint(end);
      const u = u64(lo, r.hi);
      return (u >> 1n) ^ -(u & 1n);
    }
    case FT.BOOL: {
      const lo = r.varint(end);
      return lo !== 0 || r.hi !== 0;
    }
    case FT.ENUM: {
      const v = r.varint(end) | 0;
      const n = f.enumNames!.get(v);
      return n === undefined ? v : n;
    }
    case FT.FIXED32:
      need(r, 4, end);
      r.pos += 4;
      return b.readUInt32LE(r.pos - 4);
    case FT.SFIXED32:
      need(r, 4, end);
      r.pos += 4;
      return b.readInt32LE(r.pos - 4);
    case FT.FLOAT:
      need(r, 4, end);
      r.pos += 4;
      return b.readFloatLE(r.pos - 4);
    case FT.FIXED64:
      need(r, 8, end);
      r.pos += 8;
      return b.readBigUInt64LE(r.pos - 8);
    case FT.SFIXED64:
      need(r, 8, end);
      r.pos += 8;
      return b.readBigInt64LE(r.pos - 8);
    case FT.DOUBLE:
      need(r, 8, end);
      r.pos += 8;
      return b.readDoubleLE(r.pos - 8);
    default:
      throw new CodecError(`field ${f.name}: not a scalar`, r.pos);
  }
}

function need(r: Reader, n: number, end: number): void {
  if (r.pos + n > end) throw new CodecError('fixed-size field runs past the end of the message', r.pos);
}

export function readLength(r: Reader, end: number): number {
  const len = r.varint(end) >>> 0;
  if (r.hi !== 0 || r.pos + len > end) throw new CodecError(`length ${len} runs past the end of the message`, r.pos);
  return len;
}

/** Decode one field whose tag the fast path did not expect (unknown field, other wire form). */
function decodeFieldSlow(spec: MessageSpec, o: Record<string, unknown>, r: Reader, tag: number, fieldStart: number, end: number): void {
  const buf = r.buf;
  const id = tag >>> 3;
  const wt = tag & 7;
  if (id === 0) throw new CodecError('field number 0', fieldStart);
  const f = id < 64 ? spec.small[id] : spec.byId.get(id);
  if (f === undefined || (wt !== f.wire && !(f.repeated && wt === 2 && WIRE[f.type] !== 2) && !(f.packed && wt === WIRE[f.type]))) {
    skipField(r, wt, end);
    let u = (o as any)[UNKNOWN_FIELDS] as Buffer[] | undefined;
    if (!u) {
      u = [];
      Object.defineProperty(o, UNKNOWN_FIELDS, { value: u, enumerable: false, writable: true, configurable: true });
    }
    u.push(Buffer.from(buf.subarray(fieldStart, r.pos)));
    return;
  }
  let v: unknown;
  if (f.type === FT.MESSAGE) {
    const len = readLength(r, end);
    const stop = r.pos + len;
    v = decoderOf(f.message!)(r, stop);
    r.pos = stop;
  } else if (f.type === FT.STRING) {
    const len = readLength(r, end);
    v = buf.toString('utf8', r.pos, r.pos + len);
    r.pos += len;
  } else if (f.type === FT.BYTES) {
    const len = readLength(r, end);
    v = Buffer.from(buf.subarray(r.pos, r.pos + len));
    r.pos += len;
  } else if (wt === 2) {
    // packed repeated scalars
    const len = readLength(r, end);
    const stop = r.pos + len;
    let arr = o[f.name] as unknown[] | undefined;
    if (!arr) o[f.name] = arr = [];
    while (r.pos < stop) arr.push(readScalar(r, f, stop));
    return;
  } else v = readScalar(r, f, end);
  if (f.repeated) {
    const arr = o[f.name] as unknown[] | undefined;
    if (arr) arr.push(v);
    else o[f.name] = [v];
  } else o[f.name] = v;
}

type Decoder = (r: Reader, end: number) => Record<string, unknown>;
const decoders = new WeakMap<MessageSpec, Decoder>();

/** Expression reading one value of field f (reader `r`, limit `end`). */
function readExpr(f: FieldSpec, i: number): string {
  switch (f.type) {
    case FT.INT32:
      return 'r.varint(end) | 0';
    case FT.UINT32:
      return 'r.varint(end) >>> 0';
    case FT.SINT32:
      return '(t = r.varint(end), (t >>> 1) ^ -(t & 1))';
    case FT.UINT64:
      return '(t = r.varint(end), r.hi === 0 ? BigInt(t >>> 0) : u64(t, r.hi))';
    case FT.BOOL:
      return '(t = r.varint(end), t !== 0 || r.hi !== 0)';
    case FT.ENUM:
      return `(t = r.varint(end) | 0, (n = names${i}.get(t)) === undefined ? t : n)`;
    case FT.STRING:
      return '(t = readLength(r, end), r.pos += t, buf.toString("utf8", r.pos - t, r.pos))';
    case FT.BYTES:
      return '(t = readLength(r, end), r.pos += t, Buffer.from(buf.subarray(r.pos - t, r.pos)))';
    case FT.MESSAGE:
      return `(t = readLength(r, end) + r.pos, n = sub${i}(r, t), r.pos = t, n)`;
    default:
      return `readScalar(r, field${i}, end)`;
  }
}

/** The parameters a decoder's factory takes before its fields' (field0, names0, sub0...). */
const FACTORY_PARAMS = ['spec', 'CodecError', 'decodeFieldSlow', 'readLength', 'readScalar', 'u64', 'Buffer'];

/**
 * What a message's generated function (decoder or encoder) refers to of the schema: its
 * parameters after its kind's own, and their values for this spec. Each field's spec (field0...),
 * its enum names where `enums` (names0...), and for a message field `sub`'s function of the same
 * kind for that message (sub0...).
 */
function fieldArgs(spec: MessageSpec, enums: boolean, sub: (m: MessageSpec) => unknown): { params: string[]; vals: unknown[] } {
  const params: string[] = [];
  const vals: unknown[] = [];
  spec.fields.forEach((f, i) => {
    params.push(`field${i}`);
    vals.push(f);
    if (enums && f.enumNames) {
      params.push(`names${i}`);
      vals.push(f.enumNames);
    }
    if (f.message) {
      params.push(`sub${i}`);
      vals.push(sub(f.message));
    }
  });
  return { params, vals };
}

/**
 * A sub-message's decoder, found at its first value (it may be the message's own, not made yet)
 * and kept: not looked up again for each value.
 */
function subDecoder(m: MessageSpec): Decoder {
  let d: Decoder | undefined;
  return (r, end) => (d ??= decoderOf(m))(r, end);
}

/**
 * The source of one message's decoder (it returns the decoder): a switch on the tag with constant
 * property names, so V8 creates entries with stable shapes; unexpected tags go to decodeFieldSlow.
 */
function decoderBody(spec: MessageSpec): string {
  let cases = '';
  spec.fields.forEach((f, i) => {
    const key = JSON.stringify(f.name);
    const expr = readExpr(f, i);
    const store = f.repeated ? `if ((a = o[${key}]) === undefined) o[${key}] = [${expr}]; else a.push(${expr});` : `o[${key}] = ${expr};`;
    cases += `      case ${f.tag}: ${store} break;\n`;
  });
  let required = '';
  for (const f of spec.required) {
    required += `  if (o[${JSON.stringify(f.name)}] === undefined) throw new CodecError(${JSON.stringify(`${spec.name}: required field ${f.name} is missing`)}, end);\n`;
  }
  return `return function decode_${spec.name.replace(/\W/g, '_')}(r, end) {
  const buf = r.buf;
  const o = {};
  let t, n, a;
  while (r.pos < end) {
    const start = r.pos;
    let tag = buf[start];
    if (tag < 0x80) r.pos = start + 1; else tag = r.varint(end) >>> 0;
    switch (tag) {
${cases}      default: decodeFieldSlow(spec, o, r, tag, start, end);
    }
  }
  if (r.pos !== end) throw new CodecError('field runs past the end of the message', end);
${required}  return o;
}`;
}

/**
 * The text of one message's decoder factory as the build writes it into gen/decoders.js
 * (writePrebuiltDecoders): the function `new Function` would make of decoderBody, in a file,
 * so that the bundled bins' code cache holds it compiled.
 */
export function decoderFactoryText(spec: MessageSpec): string {
  return factoryText(DECODERS, spec);
}

/**
 * The decoder for one message: its factory from the build (gen/decoders.js, when the schema is
 * the one it was written from: schema.ts prebuiltDecoder) or else compiled now from its source.
 */
function decoderOf(spec: MessageSpec): Decoder {
  return generated(DECODERS, spec);
}

/**
 * What one kind of function made for each message (its decoder, its encoder) is made of: the
 * parameters its factory takes before the fields' own and their values, its source, the factory
 * the build wrote, and the functions made so far.
 */
interface Kind<F> {
  params: readonly string[];
  args(spec: MessageSpec): readonly unknown[];
  /** the fields' own parameters and values */
  fields(spec: MessageSpec): { params: string[]; vals: unknown[] };
  /** the source (made only where the build wrote no factory) */
  body(spec: MessageSpec): string;
  prebuilt(spec: MessageSpec): Function | undefined;
  made: WeakMap<MessageSpec, F>;
}

/** A message's factory as text (gen/decoders.js): the function `new Function` would make of its source. */
function factoryText<F>(kind: Kind<F>, spec: MessageSpec): string {
  return `function (${[...kind.params, ...kind.fields(spec).params].join(', ')}) {\n${kind.body(spec)}\n}`;
}

/** A message's function of a kind: made once, from the build's factory or else compiled now from its source. */
function generated<F>(kind: Kind<F>, spec: MessageSpec): F {
  let f = kind.made.get(spec);
  if (f) return f;
  // placeholder for recursive messages until made
  kind.made.set(spec, ((...a: unknown[]) => (kind.made.get(spec) as (...x: unknown[]) => unknown)(...a)) as F);
  const { params, vals } = kind.fields(spec);
  const make = (kind.prebuilt(spec) ?? new Function(...kind.params, ...params, kind.body(spec))) as (...a: unknown[]) => F;
  f = make(...kind.args(spec), ...vals);
  kind.made.set(spec, f);
  return f;
}

const DECODERS: Kind<Decoder> = {
  params: FACTORY_PARAMS,
  args: (spec) => [spec, CodecError, decodeFieldSlow, readLength, readScalar, u64, Buffer],
  fields: (spec) => fieldArgs(spec, true, subDecoder),
  body: decoderBody,
  prebuilt: prebuiltDecoder,
  made: decoders,
};

const shared = new Reader(Buffer.alloc(0), 0);

/**
 * Compile now the decoder of every message of the schema (each is otherwise compiled on its
 * first use): for a process that will decode images soon and has time before (a service worker).
 */
export function compileDecoders(specs: Iterable<MessageSpec>): void {
  for (const spec of specs) decoderOf(spec);
}

/** Decode buf[start, end) as one message of `spec`. Throws CodecError (pos relative to buf). */
export function decodeMessage(spec: MessageSpec, buf: Buffer, start = 0, end = buf.length): Record<string, unknown> {
  const dec = decoderOf(spec);
  const r = shared;
  const saved = r.buf;
  const savedPos = r.pos;
  r.buf = buf;
  r.pos = start;
  try {
    return dec(r, end);
  } finally {
    r.buf = saved;
    r.pos = savedPos;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Thrown for values that do not fit the schema; `path` names the field. */
export class ShapeError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** one 64-bit word's scratch, for the two 32-bit halves of a bigint */
const WORD = new DataView(new ArrayBuffer(8));

export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  /** Unsigned 32-bit varint. */
  uvarint(v: number): void {
    this.ensure(5);
    const b = this.buf;
    v >>>= 0;
    while (v >= 0x80) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }
  /** 64-bit varint from two 32-bit halves. */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    lo >>>= 0;
    hi >>>= 0;
    while (hi !== 0 || lo >= 0x80) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[this.pos++] = lo;
  }
  /** A 64-bit varint of v's low 64 bits (two's complement), through a scratch word (setBigUint64 takes v modulo 2^64): no BigInt made. */
  bigvarint(v: bigint): void {
    WORD.setBigUint64(0, v, true);
    const hi = WORD.getUint32(4, true);
    if (hi === 0) this.uvarint(WORD.getUint32(0, true));
    else this.varint64(WORD.getUint32(0, true), hi);
  }
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }
  /** Bytes written so far (a view, valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

const INT32_MIN = -0x80000000;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (Buffer.isBuffer(v)) return 'Buffer';
  return typeof v;
}

function toInt(v: unknown, path: string, min: number, max: number): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  if (typeof v === 'bigint' && v >= BigInt(min) && v <= BigInt(max)) return Number(v);
  throw new ShapeError(path, `expected an integer in [${min}, ${max}], got ${typeName(v)} ${typeof v === 'number' || typeof v === 'bigint' ? String(v) : ''}`.trimEnd());
}

const I64_MIN = -(1n << 63n);
const I64_END = 1n << 63n;
const U64_END = 1n << 64n;

function toBig(v: unknown, path: string, signed: boolean): bigint {
  let b: bigint | undefined;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  if (b === undefined) throw new ShapeError(path, `expected a 64-bit integer (bigint), got ${typeName(v)}`);
  if (signed ? b < I64_MIN || b >= I64_END : b < 0n || b >= U64_END)
    throw new ShapeError(path, `${b} is out of range for a ${signed ? 'signed' : 'unsigned'} 64-bit field`);
  return b;
}

function writeScalar(w: Writer, f: FieldSpec, v: unknown, path: string): void {
  switch (f.type) {
    case FT.INT32: {
      const n = toInt(v, path, INT32_MIN, 0x7fffffff);
      if (n < 0) w.varint64(n, -1);
      else w.uvarint(n);
      return;
    }
    case FT.UINT32:
      w.uvarint(toInt(v, path, 0, 0xffffffff));
      return;
    case FT.SINT32: {
      const n = toInt(v, path, INT32_MIN, 0x7fffffff);
      w.uvarint(((n << 1) ^ (n >> 31)) >>> 0);
      return;
    }
    case FT.INT64:
      w.bigvarint(toBig(v, path, true));
      return;
    case FT.UINT64:
      if (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v)) w.uvarint(v);
      else w.bigvarint(toBig(v, path, false));
      return;
    case FT.SINT64: {
      const b = toBig(v, path, true);
      w.bigvarint(b >= 0n ? b << 1n : ((-b) << 1n) - 1n);
      return;
    }
    case FT.BOOL:
      if (typeof v !== 'boolean') throw new ShapeError(path, `expected a boolean, got ${typeName(v)}`);
      w.uvarint(v ? 1 : 0);
      return;
    case FT.ENUM: {
      let n: number | undefined;
      if (typeof v === 'string') {
        n = f.enumValues!.get(v);
        if (n === undefined) throw new ShapeError(path, `unknown enum name ${JSON.stringify(v)}`);
      } else n = toInt(v, path, INT32_MIN, 0x7fffffff);
      if (n < 0) w.varint64(n, -1);
      else w.uvarint(n);
      return;
    }
    case FT.FIXED32:
      w.ensure(4);
      w.buf.writeUInt32LE(toInt(v, path, 0, 0xffffffff), w.pos);
      w.pos += 4;
      return;
    case FT.SFIXED32:
      w.ensure(4);
      w.buf.writeInt32LE(toInt(v, path, INT32_MIN, 0x7fffffff), w.pos);
      w.pos += 4;
      return;
    case FT.FIXED64:
      w.ensure(8);
      w.buf.writeBigUInt64LE(toBig(v, path, false), w.pos);
      w.pos += 8;
      return;
    case FT.SFIXED64:
      w.ensure(8);
      w.buf.writeBigInt64LE(toBig(v, path, true), w.pos);
      w.pos += 8;
      return;
    case FT.FLOAT:
    case FT.DOUBLE:
      if (typeof v !== 'number') throw new ShapeError(path, `expected a number, got ${typeName(v)}`);
      w.ensure(8);
      if (f.type === FT.FLOAT) {
        w.buf.writeFloatLE(v, w.pos);
        w.pos += 4;
      } else {
        w.buf.writeDoubleLE(v, w.pos);
        w.pos += 8;
      }
      return;
  }
}

function writeLengthDelimitedFrom(w: Writer, start: number): void {
  // Content was written at start+1 after a 1-byte placeholder; fix up the length.
  const len = w.pos - start - 1;
  const n = varintSize(len);
  if (n > 1) {
    w.ensure(n - 1);
    w.buf.copyWithin(start + n, start + 1, w.pos);
    w.pos += n - 1;
  }
  let p = start;
  let v = len;
  while (v >= 0x80) {
    w.buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  w.buf[p] = v;
}

/** An unsigned 64-bit value: a number up to 2^32 as it is, else as a bigint (writeScalar's UINT64). */
function wU64(w: Writer, v: unknown): void {
  if (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v)) w.uvarint(v);
  else w.bigvarint(toBig(v, '', false));
}

function wU32(w: Writer, v: unknown): void {
  w.uvarint(toInt(v, '', 0, 0xffffffff));
}

function wBool(w: Writer, v: unknown): void {
  if (typeof v !== 'boolean') throw new ShapeError('', `expected a boolean, got ${typeName(v)}`);
  w.uvarint(v ? 1 : 0);
}

function wStr(w: Writer, v: unknown): void {
  if (typeof v !== 'string') throw new ShapeError('', `expected a string, got ${typeName(v)}`);
  const len = Buffer.byteLength(v);
  w.uvarint(len);
  w.ensure(len);
  w.buf.write(v, w.pos, 'utf8');
  w.pos += len;
}

function wBytes(w: Writer, v: unknown): void {
  if (!(v instanceof Uint8Array)) throw new ShapeError('', `expected a Buffer, got ${typeName(v)}`);
  w.uvarint(v.length);
  w.bytes(v);
}

/** A message value, length-delimited, through its encoder `enc`. */
function wMsg(w: Writer, v: unknown, enc: Encoder, name: string): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) throw new ShapeError('', `expected an object (${name}), got ${typeName(v)}`);
  const start = w.pos;
  w.byte(0);
  enc(w, v as Record<string, unknown>, '');
  writeLengthDelimitedFrom(w, start);
}

/**
 * An error from field `name` (its element j when j >= 0), given its place in the message at
 * `path`: the values below a message are encoded with '' for their path, and an error from them
 * is given its place on the way out (a core image of a thread made ~50 KB of path strings per
 * thread, for no error).
 */
function placed(e: unknown, path: string, name: string, j: number): unknown {
  if (!(e instanceof ShapeError)) return e;
  const here = pathJoin(path, j < 0 ? name : `${name}[${j}]`);
  return new ShapeError(pathJoin(here, e.path), e.message);
}

/** A required field (`name` of message `msg`) without a value. */
function missing(path: string, name: string, msg: string): ShapeError {
  return new ShapeError(pathJoin(path, name), `required field ${name} of ${msg} is missing`);
}

type Encoder = (w: Writer, o: Record<string, unknown>, path: string) => void;
const encoders = new WeakMap<MessageSpec, Encoder>();

/** The call writing one value `v` (an expression) of field f (the i-th). */
function writeCall(f: FieldSpec, i: number, v: string): string {
  switch (f.type) {
    case FT.UINT64:
      return `wU64(w, ${v})`;
    case FT.UINT32:
      return `wU32(w, ${v})`;
    case FT.BOOL:
      return `wBool(w, ${v})`;
    case FT.STRING:
      return `wStr(w, ${v})`;
    case FT.BYTES:
      return `wBytes(w, ${v})`;
    case FT.MESSAGE:
      return `wMsg(w, ${v}, sub${i}, ${JSON.stringify(f.message!.name)})`;
    default:
      return `writeScalar(w, field${i}, ${v}, '')`;
  }
}

/** The parameters an encoder's factory takes before its fields' (field0, sub0...). */
const ENCODER_PARAMS = ['ShapeError', 'pathJoin', 'placed', 'missing', 'typeName', 'writeScalar', 'writeLengthDelimitedFrom', 'wU64', 'wU32', 'wBool', 'wStr', 'wBytes', 'wMsg', 'UNKNOWN_FIELDS'];

/** A sub-message's encoder, found at its first value and kept (subDecoder's). */
function subEncoder(m: MessageSpec): Encoder {
  let e: Encoder | undefined;
  return (w, o, path) => (e ??= encoderOf(m))(w, o, path);
}

/**
 * The source of one message's encoder: its fields in number order with constant property names
 * and each field's writer chosen here, the keys of the object checked against the field names in
 * a switch, not a map (the values and errors of encodeInto's loop over the spec, which it was).
 */
function encoderBody(spec: MessageSpec): string {
  let fields = '';
  spec.fields.forEach((f, i) => {
    const key = JSON.stringify(f.name);
    let write: string;
    if (!f.repeated) write = `w.uvarint(${f.tag}); ${writeCall(f, i, 'v')};`;
    else {
      const each = f.packed ? `${writeCall(f, i, 'v[j]')};` : `w.uvarint(${f.tag}); ${writeCall(f, i, 'v[j]')};`;
      write = `if (!Array.isArray(v)) throw new ShapeError('', \`expected an array, got \${typeName(v)}\`); ` +
        (f.packed
          ? `if (v.length !== 0) { w.uvarint(${f.tag}); s = w.pos; w.byte(0); for (j = 0; j < v.length; j++) ${each} writeLengthDelimitedFrom(w, s); }`
          : `for (j = 0; j < v.length; j++) { ${each} }`);
    }
    fields += f.required
      ? `    n = ${key}; v = o[${key}]; if (v == null) { n = ''; throw missing(path, ${key}, ${JSON.stringify(spec.name)}); } j = -1; ${write}\n`
      : `    n = ${key}; v = o[${key}]; if (v != null) { j = -1; ${write} }\n`;
  });
  const known = spec.fields.map((f) => `case ${JSON.stringify(f.name)}:`).join(' ');
  return `return function encode_${spec.name.replace(/\W/g, '_')}(w, o, path) {
  for (const key in o) {
    switch (key) {
      ${known ? `${known} break;\n      ` : ''}default: throw new ShapeError(pathJoin(path, key), \`no field \${key} in ${spec.name.replace(/[`$\\]/g, '')}\`);
    }
  }
  // (n: the field being written, for the place of an error from its value: placed)
  let v, j = -1, s, n = '';
  try {
${fields}  } catch (e) {
    throw n === '' ? e : placed(e, path, n, j);
  }
  const unknown = o[UNKNOWN_FIELDS];
  if (unknown) for (const u of unknown) w.bytes(u);
}`;
}

/**
 * The text of one message's encoder factory as the build writes it into gen/decoders.js
 * (beside the decoders): the function `new Function` would make of encoderBody.
 */
export function encoderFactoryText(spec: MessageSpec): string {
  return factoryText(ENCODERS, spec);
}

/** The encoder of one message: the build's (gen/decoders.js) or else compiled now from its source. */
function encoderOf(spec: MessageSpec): Encoder {
  return generated(ENCODERS, spec);
}

const ENCODERS: Kind<Encoder> = {
  params: ENCODER_PARAMS,
  args: () => [ShapeError, pathJoin, placed, missing, typeName, writeScalar, writeLengthDelimitedFrom, wU64, wU32, wBool, wStr, wBytes, wMsg, UNKNOWN_FIELDS],
  fields: (spec) => fieldArgs(spec, false, subEncoder),
  body: encoderBody,
  prebuilt: prebuiltEncoder,
  made: encoders,
};

/** One message's fields into w, through its encoder. */
function encodeInto(w: Writer, spec: MessageSpec, o: Record<string, unknown>, path: string): void {
  encoderOf(spec)(w, o, path);
}

/** `a` then `b` in a field path: `a.b`, `a[3]`, or either alone when the other is empty. */
function pathJoin(a: string, b: string): string {
  if (!a) return b;
  if (!b) return a;
  return b.startsWith('[') ? a + b : `${a}.${b}`;
}

/** Encode one message into w (appending). Throws ShapeError. */
export function encodeMessageTo(w: Writer, spec: MessageSpec, o: Record<string, unknown>, path = ''): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ShapeError(path || '<entry>', `expected an object, got ${typeName(o)}`);
  encodeInto(w, spec, o, path);
}

/** Encode one message to a fresh Buffer. */
export function encodeMessage(spec: MessageSpec, o: Record<string, unknown>, path = ''): Buffer {
  const w = new Writer();
  encodeMessageTo(w, spec, o, path);
  return Buffer.from(w.view());
}

export { is64 };
