import type { Writable } from 'node:stream';
import { CodecError, decodeMessage, encodeMessage, Reader, ShapeError, Writer } from './codec.js';
import { b64decode, b64encode, DICT_TABLES, encodeDev, FLAG_TABLES, ipFromString, pyInt, qpDecode, unmapFlags } from './crit-values.js';
import { AsciiOut, compactWriterOf, IND, messageText, rendererOf } from './crit-text.js';
import { shapeError } from './errors.js';
import { msgPayload, msgsOfPayload, semPayload, semValues, type QueuedMessage } from './ipc-payload.js';
import { EntryEncoder, kindInfo, type Entry, type Image } from './framing.js';
import type { ImageStream } from './io.js';
import { magicHeader, type MagicInfo } from './magic.js';
import { parseJsonStrict, parseJsonExact, pyDump, pyString } from './pyjson.js';
import { FT, is64, messageSpec, type FieldSpec, type MessageSpec } from './schema.js';

/**
 * CRIU crit's JSON: `{"magic": "CORE", "entries": [...]}` exactly as `crit decode [--pretty]`
 * writes it (pycriu's pb2dict rules: fields in number order, 64-bit as plain integers, enums by
 * name, bytes as base64 (encodebytes), unix socket names quoted-printable, the payload under
 * "extra"; --pretty adds 4-space indentation, hex, flag names, major:minor, IP addresses and
 * dictionary names), and back.
 */

export interface CritJsonOptions {
  /** crit decode --pretty. */
  pretty?: boolean;
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0;
}
const round = (x: number, y: number) => Math.ceil(x / y) * y;

/** The crit JSON value of an entry's payload (as pycriu's extra handlers render it). */
function extraValue(info: MagicInfo, e: Entry): unknown {
  const x = e.extra ?? Buffer.alloc(0);
  switch (info.payload) {
    case 'tcp-stream': {
      const inq = num(e['inq_len']);
      return { inq: b64encode(x.subarray(0, inq)), outq: b64encode(x.subarray(inq)) };
    }
    case 'ipc-shm':
      return b64encode(x.subarray(0, num(e['size'])));
    case 'ipc-sem':
      return semValues(x, num(e['nsems']));
    case 'ipc-msg': {
      const spec = messageSpec('ipc_msg');
      return msgsOfPayload(x).flatMap((m) => [parseJsonExact(messageText(spec, m.msg, false, false, '', undefined)), b64encode(m.data)]);
    }
    default:
      return b64encode(x);
  }
}


/** Renders entries of one kind as crit JSON text. */
class CritEntryWriter {
  index = 0;
  readonly main: MessageSpec;
  readonly first: MessageSpec;
  constructor(
    readonly info: MagicInfo,
    readonly pretty: boolean,
  ) {
    this.main = messageSpec(info.message!);
    this.first = info.firstMessage ? messageSpec(info.firstMessage) : this.main;
  }
  entry(e: Entry): string {
    const spec = this.index === 0 ? this.first : this.main;
    const cur = this.pretty ? IND + IND : '';
    let extra: string | undefined;
    const p = this.info.payload;
    if (p !== 'none' && p !== 'pagemap' && e.extra !== undefined) {
      const v = extraValue(this.info, e);
      extra = pyDump(v, this.pretty ? IND : null, this.pretty ? cur + IND : '');
    }
    this.index++;
    if (!this.pretty) return compactWriterOf(spec)(e, extra);
    return messageText(spec, e, this.pretty, false, cur, extra);
  }
}

function head(magic: string, pretty: boolean): string {
  return pretty ? `{\n${IND}"magic": ${pyString(magic)},\n${IND}"entries": [` : `{"magic": ${pyString(magic)}, "entries": [`;
}
function tail(count: number, pretty: boolean): string {
  if (count === 0) return pretty ? ']\n}' : ']}';
  return pretty ? `\n${IND}]\n}` : ']}';
}

/** The crit JSON document of an image (no trailing newline; crit adds one when writing to stdout). */
export function toCritJson(image: Image<object>, opts: CritJsonOptions = {}): string {
  const pretty = !!opts.pretty;
  const info = kindInfo(image.magic);
  const w = new CritEntryWriter(info, pretty);
  const sep = pretty ? `,\n${IND}${IND}` : ', ';
  let s = head(info.name, pretty);
  for (let i = 0; i < image.entries.length; i++) s += (i ? sep : pretty ? `\n${IND}${IND}` : '') + w.entry(image.entries[i] as Entry);
  return s + tail(image.entries.length, pretty);
}

/** The entries of an image as crit JSON values (plain objects; 64-bit values as bigint). */
export function toCritValue(image: Image<object>, opts: CritJsonOptions = {}): { magic: string; entries: unknown[] } {
  return parseJsonExact(toCritJson(image, opts)) as { magic: string; entries: unknown[] };
}

/**
 * Stream the crit JSON document of an image (whole or streaming) as ASCII bytes, in chunks of
 * about `chunk` bytes; memory stays flat for huge images. Streamed kinds without payloads are
 * rendered straight from their protobuf bytes; entries that fast path declines, and every
 * other kind, are decoded to objects and written from those.
 */
export async function* critJsonBytes(src: Image<object> | ImageStream, opts: CritJsonOptions & { chunk?: number } = {}): AsyncGenerator<Buffer> {
  const pretty = !!opts.pretty;
  const limit = opts.chunk ?? 1 << 16;
  const whole = 'entries' in src && Array.isArray((src as Image).entries);
  const info = whole ? kindInfo((src as Image).magic) : await (src as ImageStream).header();
  const w = new CritEntryWriter(info, pretty);
  const sep = pretty ? `,\n${IND}${IND}` : ', ';
  const first = pretty ? `\n${IND}${IND}` : '';
  const o = new AsciiOut(limit + (limit >> 2));
  o.ascii(head(info.name, pretty));
  let count = 0;
  if (!whole && (info.payload === 'none' || info.payload === 'pagemap')) {
    const r = new Reader(Buffer.alloc(0), 0);
    const mode = pretty ? 1 : 0;
    const renderFirst = rendererOf(w.first, mode);
    const renderMain = rendererOf(w.main, mode);
    for await (const b of (src as ImageStream).spans()) {
      r.buf = b.buf;
      const spans = b.spans;
      const n = spans.length >> 1;
      for (let k = 0; k < n; k++) {
        o.ascii(count++ ? sep : first);
        const mark = o.pos;
        r.pos = spans[2 * k]!;
        let ok: boolean;
        try {
          ok = (b.index + k === 0 ? renderFirst : renderMain)(r, spans[2 * k + 1]!, 2, o);
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
          ok = false; // the decoder below reports it, with file and offset
        }
        if (!ok) {
          o.pos = mark;
          w.index = b.index + k;
          o.ascii(w.entry(b.decode(k)));
        }
        if (o.pos >= limit) yield o.take();
      }
    }
  } else {
    const batches: Iterable<Entry[]> | AsyncIterable<Entry[]> = whole ? [(src as Image).entries as Entry[]] : (src as ImageStream).batches();
    for await (const b of batches) {
      for (let i = 0; i < b.length; i++) {
        o.ascii((count++ ? sep : first) + w.entry(b[i]!));
        if (o.pos >= limit) yield o.take();
      }
    }
  }
  o.ascii(tail(count, pretty));
  yield o.take();
}

/** critJsonBytes as text chunks. */
export async function* critJsonChunks(src: Image<object> | ImageStream, opts: CritJsonOptions & { chunk?: number } = {}): AsyncGenerator<string> {
  for await (const b of critJsonBytes(src, opts)) yield b.toString('latin1');
}

/** Write the crit JSON document to a stream, honouring backpressure. Adds the trailing newline if `newline`. */
export async function writeCritJson(src: Image<object> | ImageStream, out: Writable, opts: CritJsonOptions & { newline?: boolean } = {}): Promise<void> {
  for await (const c of critJsonChunks(src, opts)) {
    if (!out.write(c)) await new Promise<void>((r) => out.once('drain', r));
  }
  if (opts.newline) if (!out.write('\n')) await new Promise<void>((r) => out.once('drain', r));
}

// ---------------------------------------------------------------------------------------------
// crit JSON → image

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

function critInt(f: FieldSpec, v: unknown, path: string): number | bigint {
  let b: bigint | null = null;
  if (typeof v === 'string') {
    if (f.dev) b = encodeDev(v, f.odev);
    else if (f.flags !== undefined && FLAG_TABLES[f.flags]) b = unmapFlags(v, FLAG_TABLES[f.flags]!);
    else if (f.dict !== undefined) {
      const t = DICT_TABLES[f.dict]?.[f.name];
      const hit = t ? Object.entries(t).find(([, n]) => n === v) : undefined;
      b = hit ? BigInt(hit[0]) : pyInt(v);
    } else b = pyInt(v);
    if (b === null) throw new ShapeError(path, `cannot read ${describe(v)} as an integer`);
  } else if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) {
    // JSON.parse rounds integers beyond 2^53: ask for an exact re-parse (or refuse a parsed value)
    if (!Number.isSafeInteger(v)) throw new NeedExact(path);
    b = BigInt(v);
  }
  else throw new ShapeError(path, `expected an integer, got ${describe(v)}`);
  if (is64(f.type)) return b;
  return b >= -(2n ** 53n) && b <= 2n ** 53n ? Number(b) : b;
}

function critScalar(f: FieldSpec, v: unknown, path: string): unknown {
  switch (f.type) {
    case FT.BYTES: {
      if (typeof v !== 'string') throw new ShapeError(path, `expected a ${f.conv === 'unix_name' ? 'quoted-printable' : 'base64'} string, got ${describe(v)}`);
      if (f.conv === 'unix_name') return qpDecode(v);
      const b = b64decode(v);
      if (!b) throw new ShapeError(path, 'not base64');
      return b;
    }
    case FT.ENUM:
      if (typeof v === 'string') {
        if (!f.enumValues!.has(v)) throw new ShapeError(path, `unknown enum name ${JSON.stringify(v)}`);
        return v;
      }
      if (typeof v === 'number' && Number.isInteger(v)) return f.enumNames!.get(v) ?? v;
      throw new ShapeError(path, `expected an enum name, got ${describe(v)}`);
    case FT.BOOL:
      if (typeof v !== 'boolean') throw new ShapeError(path, `expected true or false, got ${describe(v)}`);
      return v;
    case FT.STRING:
      if (typeof v !== 'string') throw new ShapeError(path, `expected a string, got ${describe(v)}`);
      return v;
    case FT.FLOAT:
    case FT.DOUBLE:
      if (typeof v !== 'number') throw new ShapeError(path, `expected a number, got ${describe(v)}`);
      return v;
    case FT.MESSAGE:
      return critMessage(f.message!, v, path);
    default:
      if (typeof v === 'number' && Number.isSafeInteger(v) && !is64(f.type)) return v;
      return critInt(f, v, path);
  }
}

/**
 * Convert a crit dict into an entry object. With inPlace the dict itself is rewritten (for trees
 * this module parsed itself), otherwise a new object is built. `skipExtra` leaves the top-level
 * "extra" key to the caller.
 */
function critMessage(spec: MessageSpec, d: unknown, path: string, inPlace = false, skipExtra = false): Record<string, unknown> {
  if (!isObj(d)) throw new ShapeError(path || '<entry>', `expected an object (${spec.name}), got ${describe(d)}`);
  const o: Record<string, unknown> = inPlace ? d : {};
  for (const key in d) {
    if (skipExtra && key === 'extra') continue;
    const f = spec.byName.get(key);
    const fp = path ? `${path}.${key}` : key;
    if (!f) throw new ShapeError(fp, `no field ${key} in ${spec.name}`);
    const v = d[key];
    if (f.repeated) {
      if (!Array.isArray(v)) throw new ShapeError(fp, `expected an array, got ${describe(v)}`);
      if (f.ipadd && v.length > 0 && typeof v[0] === 'string') {
        const words = ipFromString(v[0]);
        if (!words) throw new ShapeError(`${fp}[0]`, `not an IP address: ${JSON.stringify(v[0])}`);
        o[key] = words;
        continue;
      }
      const arr = inPlace ? v : new Array(v.length);
      for (let i = 0; i < v.length; i++) arr[i] = f.type === FT.MESSAGE ? critMessage(f.message!, v[i], `${fp}[${i}]`, inPlace) : critScalar(f, v[i], `${fp}[${i}]`);
      o[key] = arr;
    } else o[key] = f.type === FT.MESSAGE ? critMessage(f.message!, v, fp, inPlace) : critScalar(f, v, fp);
  }
  return o;
}

function b64field(v: unknown, path: string): Buffer {
  if (typeof v !== 'string') throw new ShapeError(path, `expected a base64 string, got ${describe(v)}`);
  const b = b64decode(v);
  if (!b) throw new ShapeError(path, 'not base64');
  return b;
}

function critExtra(info: MagicInfo, e: Entry, v: unknown, path: string): Buffer {
  switch (info.payload) {
    case 'tcp-stream': {
      if (!isObj(v)) throw new ShapeError(path, `expected {"inq": …, "outq": …}, got ${describe(v)}`);
      return Buffer.concat([b64field(v['inq'], `${path}.inq`), b64field(v['outq'], `${path}.outq`)]);
    }
    case 'ipc-shm': {
      const data = b64field(v, path);
      const size = num(e['size']);
      if (data.length < size) throw new ShapeError(path, `holds ${data.length} bytes, the entry's size is ${size}`);
      const out = Buffer.alloc(round(size, 4));
      data.copy(out, 0, 0, size);
      return out;
    }
    case 'ipc-sem': {
      if (!Array.isArray(v)) throw new ShapeError(path, `expected an array of semaphore values, got ${describe(v)}`);
      const n = num(e['nsems']);
      if (v.length !== n) throw new ShapeError(path, `has ${v.length} values, the entry's nsems is ${n}`);
      v.forEach((x, i) => {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffff) throw new ShapeError(`${path}[${i}]`, `expected a u16, got ${describe(x)}`);
      });
      return semPayload(v as number[]);
    }
    case 'ipc-msg': {
      if (!Array.isArray(v) || v.length % 2 !== 0) throw new ShapeError(path, `expected [message, data, …] pairs, got ${describe(v)}`);
      const spec = messageSpec('ipc_msg');
      const msgs: QueuedMessage[] = [];
      for (let i = 0; i < v.length; i += 2) {
        const m = critMessage(spec, v[i], `${path}[${i}]`);
        const data = b64field(v[i + 1], `${path}[${i + 1}]`);
        const msize = num(m['msize']);
        if (data.length < msize) throw new ShapeError(`${path}[${i + 1}]`, `holds ${data.length} bytes, msize is ${msize}`);
        msgs.push({ msg: m, data });
      }
      return msgPayload(msgs, path);
    }
    default:
      return b64field(v, path);
  }
}

/** An integer beyond 2^53 reached us as a JSON.parse'd number: its exact digits are lost. */
class NeedExact extends Error {
  constructor(readonly path: string) {
    super('integer beyond 2^53');
  }
}

interface CritDoc {
  info: MagicInfo;
  entries: unknown[];
  owned: boolean;
}

function openCritDoc(doc: string | Buffer | unknown, file: string | undefined, exact: boolean): CritDoc {
  const owned = typeof doc === 'string' || Buffer.isBuffer(doc);
  let v = doc;
  if (owned) {
    const text = (doc as string | Buffer).toString();
    if (exact) v = parseJsonStrict(text, file);
    else {
      try {
        v = JSON.parse(text); // fast; integers beyond 2^53 are caught in critInt and re-parsed exactly
      } catch {
        v = parseJsonStrict(text, file); // for the precise error position
      }
    }
  }
  if (!isObj(v)) throw shapeError('<document>', `expected an object with "magic" and "entries", got ${describe(v)}`, file);
  if (typeof v['magic'] !== 'string') throw shapeError('magic', `expected a string, got ${describe(v['magic'])}`, file);
  if (!Array.isArray(v['entries'])) throw shapeError('entries', `expected an array, got ${describe(v['entries'])}`, file);
  return { info: kindInfo(v['magic'], file), entries: v['entries'] as unknown[], owned };
}

function critEntry(info: MagicInfo, spec: MessageSpec, raw: unknown, i: number, inPlace: boolean): Entry {
  const path = `entries[${i}]`;
  if (!isObj(raw)) throw new ShapeError(path, `expected an object, got ${describe(raw)}`);
  const extra = raw['extra'];
  const e = critMessage(spec, raw, path, inPlace, true) as Entry;
  if (extra !== undefined) {
    if (info.payload === 'none' || info.payload === 'pagemap') throw new ShapeError(`${path}.extra`, `${info.name} entries carry no payload`);
    if (info.payload === 'ipc-shm' && e['in_pagemaps'] === true) throw new ShapeError(`${path}.extra`, 'a segment kept in pagemaps (in_pagemaps) carries no payload');
    e.extra = critExtra(info, e, extra, `${path}.extra`);
  }
  return e;
}

/**
 * Convert a crit JSON document (text, Buffer or parsed value) back into an image.
 * Accepts plain and --pretty output. Pass text to keep 64-bit integers exact.
 */
export function fromCritJson(doc: string | Buffer | unknown, opts: { file?: string } = {}): Image {
  return retryExact(doc, opts.file, (exact) => fromCritDoc(doc, opts.file, exact));
}

function retryExact<T>(doc: unknown, file: string | undefined, run: (exact: boolean) => T): T {
  try {
    return run(false);
  } catch (e) {
    if (!(e instanceof NeedExact)) throw e;
    if (!(typeof doc === 'string' || Buffer.isBuffer(doc)))
      throw shapeError(e.path, 'integer beyond 2^53 in a parsed JSON value (its digits are lost): pass the JSON text', file);
  }
  try {
    return run(true);
  } catch (e) {
    if (e instanceof NeedExact) throw shapeError(e.path, 'not an exact integer (a float beyond 2^53)', file);
    throw e;
  }
}

function fromCritDoc(doc: unknown, file: string | undefined, exact: boolean): Image {
  const d = openCritDoc(doc, file, exact);
  const main = messageSpec(d.info.message!);
  const first = d.info.firstMessage ? messageSpec(d.info.firstMessage) : main;
  const entries: Entry[] = new Array(d.entries.length);
  try {
    for (let i = 0; i < d.entries.length; i++) entries[i] = critEntry(d.info, i === 0 ? first : main, d.entries[i], i, d.owned);
  } catch (e) {
    if (e instanceof ShapeError) throw shapeError(e.path, e.message, file);
    throw e;
  }
  return { magic: d.info.name, entries };
}

/**
 * crit encode in one step: crit JSON text → image bytes, converting and encoding entry by entry
 * (entries are released as they are written, so huge documents need less memory than
 * encodeImage(fromCritJson(text))).
 */
export function encodeCritJson(doc: string | Buffer | unknown, opts: { file?: string } = {}): Buffer {
  return retryExact(doc, opts.file, (exact) => encodeCritDoc(doc, opts.file, exact));
}

function encodeCritDoc(doc: unknown, file: string | undefined, exact: boolean): Buffer {
  const d = openCritDoc(doc, file, exact);
  const main = messageSpec(d.info.message!);
  const first = d.info.firstMessage ? messageSpec(d.info.firstMessage) : main;
  const w = new Writer(Math.max(4096, d.entries.length * 24));
  w.bytes(magicHeader(d.info));
  const enc = new EntryEncoder(d.info, file);
  try {
    for (let i = 0; i < d.entries.length; i++) {
      enc.write(w, critEntry(d.info, i === 0 ? first : main, d.entries[i], i, d.owned));
      if (d.owned) d.entries[i] = undefined;
    }
  } catch (e) {
    if (e instanceof ShapeError) throw shapeError(e.path, e.message, file);
    throw e;
  }
  return Buffer.from(w.view());
}
