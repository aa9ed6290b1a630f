import { CodecError, decodeMessage, encodeMessageTo, ShapeError, Writer } from './codec.js';
import { imageError, ImageErrorCode, shapeError } from './errors.js';
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, magicByName, magicByValue, magicHeader, type MagicInfo } from './magic.js';
import { messageSpec, type MessageSpec } from './schema.js';

/**
 * The framing of a CRIU image file (see README "Framing"): magic word(s), then entries,
 * each a u32 little-endian length + protobuf bytes + the kind's extra payload, if any.
 * One incremental parser serves whole-buffer decoding and streaming.
 */

/** One decoded entry: CRIU field names as keys; `extra` holds the payload after it, if any. */
export type Entry = Record<string, unknown> & { extra?: Buffer };

/**
 * A whole image: the crit name of its magic and its entries. `E` lets callers name the entry
 * type (e.g. `Image<CoreEntry>` with types from `@crtools/images/types`); it is not checked.
 */
export interface Image<E extends object = Entry> {
  magic: string;
  entries: E[];
}

/** Largest entry (or payload) a reader accepts while streaming; bigger length prefixes are bad input. */
export const MAX_ENTRY_BYTES = 256 * 1024 * 1024;

export interface ParseContext {
  file?: string;
  /** Offset in the file of buf[0] (for error messages). */
  base: number;
}

export interface HeaderInfo {
  info: MagicInfo;
  /** Bytes taken by the magic word(s). */
  length: number;
}

/** Parse the magic words. Returns null when more bytes are needed (and !final). */
export function parseHeader(buf: Buffer, final: boolean, ctx: ParseContext, expect?: string): HeaderInfo | null {
  if (buf.length < 4) {
    if (!final) return null;
    throw imageError(ImageErrorCode.TRUNCATED, { file: ctx.file, offset: 0 }, buf.length === 0 ? 'empty file, no magic' : `file is ${buf.length} bytes, too short for a magic`);
  }
  const first = buf.readUInt32LE(0);
  let length = 4;
  let value = first;
  if (first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC) {
    if (buf.length < 8) {
      if (!final) return null;
      throw imageError(ImageErrorCode.TRUNCATED, { file: ctx.file, offset: 4 }, 'file ends after the first magic word');
    }
    value = buf.readUInt32LE(4);
    length = 8;
  }
  const info = magicByValue(value);
  if (!info) {
    throw imageError(ImageErrorCode.BAD_MAGIC, { file: ctx.file, offset: length - 4 }, `unknown magic 0x${value.toString(16)} (a raw image such as pages-*.img has no magic)`);
  }
  if (info.message === null) throw imageError(ImageErrorCode.BAD_MAGIC, { file: ctx.file, offset: length - 4 }, `${info.name} is not a protobuf image`);
  if (expect !== undefined && expect !== info.name)
    throw imageError(ImageErrorCode.BAD_MAGIC, { file: ctx.file, offset: length - 4 }, `expected a ${expect} image, found ${info.name}`);
  return { info, length };
}

const round = (x: number, y: number) => Math.ceil(x / y) * y;

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  return 0;
}

/**
 * Incremental entry parser for one image kind. feed() consumes complete entries from a buffer
 * and reports how far it got; the caller keeps the rest and calls again with more bytes.
 */
export class EntryParser {
  index = 0;
  private ghostChunks = false;
  private readonly main: MessageSpec;
  private readonly first: MessageSpec;
  private readonly ipcMsg?: MessageSpec;

  constructor(
    readonly info: MagicInfo,
    readonly ctx: ParseContext,
  ) {
    this.main = messageSpec(info.message!);
    this.first = info.firstMessage ? messageSpec(info.firstMessage) : this.main;
    if (info.payload === 'ipc-msg') this.ipcMsg = messageSpec('ipc_msg');
  }

  /** The message of every entry but a head (the kind's firstMessage). */
  get mainSpec(): MessageSpec {
    return this.main;
  }

  /**
   * Parse entries from buf[off, end) into out. Returns the offset after the last complete entry.
   * With final=true, leftover bytes are an error.
   */
  feed(buf: Buffer, off: number, end: number, final: boolean, out: Entry[]): number {
    const ctx = this.ctx;
    while (off < end) {
      const len = this.entryLength(buf, off, end, final);
      if (len < 0) return off;
      const entry = this.decodeAt(buf, off + 4, off + 4 + len, this.index);
      let next = off + 4 + len;
      const extraLen = this.extraLength(entry, buf, next, end, final);
      if (extraLen === -1) return off; // need more bytes
      if (this.carriesExtra(entry)) {
        if (extraLen > end - next) {
          if (final || extraLen > MAX_ENTRY_BYTES)
            throw imageError(
              extraLen > MAX_ENTRY_BYTES ? ImageErrorCode.BAD_ENTRY : ImageErrorCode.TRUNCATED,
              { file: ctx.file, offset: ctx.base + next },
              `entry ${this.index} payload of ${extraLen} bytes runs past the end of the file (${end - next} bytes left)`,
            );
          return off;
        }
        entry.extra = Buffer.from(buf.subarray(next, next + extraLen));
        next += extraLen;
      }
      if (this.info.payload === 'ghost-file' && this.index === 0) this.ghostChunks = entry['chunks'] === true;
      out.push(entry);
      this.index++;
      off = next;
    }
    return off;
  }

  /**
   * Length of the entry whose length word is at buf[off]; -1 when the rest has not arrived yet
   * (with final=true a short file is an error).
   */
  private entryLength(buf: Buffer, off: number, end: number, final: boolean): number {
    const at = this.ctx.base + off;
    const avail = end - off;
    if (avail < 4) {
      if (final) throw imageError(ImageErrorCode.TRUNCATED, { file: this.ctx.file, offset: at }, `${avail} stray bytes where an entry length was expected`);
      return -1;
    }
    const len = buf.readUInt32LE(off);
    // (an impossible length is refused at once, whatever a stream has read so far)
    if (len > MAX_ENTRY_BYTES)
      throw imageError(ImageErrorCode.BAD_ENTRY, { file: this.ctx.file, offset: at }, `entry ${this.index} length ${len} is over the ${MAX_ENTRY_BYTES} bytes an entry may have`);
    if (len > avail - 4) {
      if (final) throw imageError(ImageErrorCode.TRUNCATED, { file: this.ctx.file, offset: at }, `entry ${this.index} length ${len} runs past the end of the file (${avail - 4} bytes left)`);
      return -1;
    }
    return len;
  }

  /** Decode entry `index` from its message bytes buf[start, end), errors naming file and offset. */
  decodeAt(buf: Buffer, start: number, end: number, index: number): Entry {
    const spec = index === 0 ? this.first : this.main;
    try {
      return decodeMessage(spec, buf, start, end) as Entry;
    } catch (e) {
      if (e instanceof CodecError)
        throw imageError(ImageErrorCode.BAD_ENTRY, { file: this.ctx.file, offset: this.ctx.base + e.pos }, `entry ${index} (${spec.name}, ${end - start} bytes at ${this.ctx.base + start - 4}): ${e.message}`);
      throw e;
    }
  }

  /**
   * For kinds that carry no payload: find complete entries without decoding them, pushing the
   * [start, end) of each entry's message bytes into spans. Same checks and return value as feed.
   */
  frame(buf: Buffer, off: number, end: number, final: boolean, spans: number[]): number {
    if (this.info.payload !== 'none' && this.info.payload !== 'pagemap') throw new Error(`frame(): ${this.info.name} entries carry payloads`);
    while (off < end) {
      let len: number;
      try {
        len = this.entryLength(buf, off, end, final);
      } catch (e) {
        // the entries before a broken one come first (as feed decodes them before it fails);
        // the next call starts at the broken one and throws
        if (spans.length === 0) throw e;
        return off;
      }
      if (len < 0) return off;
      spans.push(off + 4, off + 4 + len);
      this.index++;
      off += 4 + len;
    }
    return off;
  }

  /**
   * Length of the payload after the entry just decoded (the entry at `index`), given that
   * `rest` bytes of the file follow it; counts the entry as read. For reading entries by
   * position (locateEntries), payloads skipped rather than held. Queue messages (IPCNS_MSG)
   * must be parsed to be measured: not offered here.
   */
  payloadLength(e: Entry, rest: number): number {
    let len = 0;
    if (this.carriesExtra(e)) {
      if (this.info.payload === 'ipc-msg') throw new Error(`${this.info.name}: its payloads are measured by parsing them, not located`);
      if (this.info.payload === 'ghost-file' && this.index === 0) len = rest;
      else len = expectedExtra(this.info, e, this.index) ?? 0;
    }
    this.index++;
    return len;
  }

  private carriesExtra(e: Entry): boolean {
    const p = this.info.payload;
    if (p === 'none' || p === 'pagemap') return false;
    // A ghost file stored in chunks has its contents after the chunk entries, not the first one.
    if (p === 'ghost-file' && this.index === 0 && e['chunks'] === true) return false;
    if (p === 'ipc-shm' && e['in_pagemaps'] === true) return false;
    return true;
  }

  /** Payload size after the entry; -1 when it cannot be known yet (need more bytes). */
  private extraLength(e: Entry, buf: Buffer, off: number, end: number, final: boolean): number {
    switch (this.info.payload) {
      case 'ipc-msg':
        return this.ipcMsgLength(num(e['qnum']), buf, off, end, final);
      case 'ghost-file':
        if (this.index === 0) {
          if (e['chunks'] === true) return 0;
          if (!final) return -1; // contents run to the end of the file
          return end - off;
        }
        break;
    }
    // every other kind states its payload size in the entry (none and pagemap carry none)
    return expectedExtra(this.info, e, this.index) ?? 0;
  }

  private ipcMsgLength(qnum: number, buf: Buffer, off: number, end: number, final: boolean): number {
    let p = off;
    for (let i = 0; i < qnum; i++) {
      if (end - p < 4) {
        if (final) throw imageError(ImageErrorCode.TRUNCATED, { file: this.ctx.file, offset: this.ctx.base + p }, `message ${i} of ${qnum} of the queue is missing`);
        return -1;
      }
      const len = buf.readUInt32LE(p);
      if (len > end - p - 4) {
        if (final || len > MAX_ENTRY_BYTES) throw imageError(ImageErrorCode.TRUNCATED, { file: this.ctx.file, offset: this.ctx.base + p }, `queue message ${i} length ${len} runs past the end of the file`);
        return -1;
      }
      let m: Record<string, unknown>;
      try {
        m = decodeMessage(this.ipcMsg!, buf, p + 4, p + 4 + len);
      } catch (e) {
        if (e instanceof CodecError) throw imageError(ImageErrorCode.BAD_ENTRY, { file: this.ctx.file, offset: this.ctx.base + e.pos }, `queue message ${i}: ${e.message}`);
        throw e;
      }
      p += 4 + len + round(num(m['msize']), 8);
      if (p > end) {
        if (final) throw imageError(ImageErrorCode.TRUNCATED, { file: this.ctx.file, offset: this.ctx.base + end }, `queue message ${i} data runs past the end of the file`);
        return -1;
      }
    }
    return p - off;
  }
}

export interface DecodeOptions {
  /** Expected kind (crit name); a different magic is IMG_BAD_MAGIC. */
  name?: string;
  /** File name for error messages. */
  file?: string;
}

/** Decode a whole image held in memory. */
export function decodeImage<E extends object = Entry>(bytes: Buffer | Uint8Array, opts: DecodeOptions = {}): Image<E> {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ctx: ParseContext = { file: opts.file, base: 0 };
  const h = parseHeader(buf, true, ctx, opts.name)!;
  const parser = new EntryParser(h.info, ctx);
  const entries: Entry[] = [];
  parser.feed(buf, h.length, buf.length, true, entries);
  return { magic: h.info.name, entries: entries as unknown as E[] };
}

/** Size of the payload an entry must carry, or undefined if the kind has none / it is free-form. */
function expectedExtra(info: MagicInfo, e: Entry, index: number): number | undefined {
  switch (info.payload) {
    case 'pipe-data':
      return num(e['bytes']);
    case 'sk-queue':
      return num(e['length']);
    case 'tcp-stream':
      return num(e['inq_len']) + num(e['outq_len']);
    case 'bpfmap-data':
      return num(e['keys_bytes']) + num(e['values_bytes']);
    case 'ipc-shm':
      // CRIU ≥ 3.x keeps segment contents in pagemap-shmem images (in_pagemaps); older ones inline
      return e['in_pagemaps'] === true ? 0 : round(num(e['size']), 4);
    case 'ipc-sem':
      return round(num(e['nsems']) * 2, 8);
    case 'ghost-file':
      return index === 0 ? undefined : num(e['len']);
    default:
      return undefined;
  }
}

/** Encodes entries of one kind into a Writer, checking payload sizes against the entries. */
export class EntryEncoder {
  index = 0;
  private readonly main: MessageSpec;
  private readonly first: MessageSpec;

  constructor(
    readonly info: MagicInfo,
    readonly file?: string,
  ) {
    this.main = messageSpec(info.message!);
    this.first = info.firstMessage ? messageSpec(info.firstMessage) : this.main;
  }

  write(w: Writer, entry: Entry, extra?: Uint8Array): void {
    this.encode(w, entry, extra, undefined);
  }

  /**
   * Encode the entry alone, declaring that `payloadLength` bytes of payload follow it: the
   * caller writes them after (a payload streamed from elsewhere, see PayloadSource).
   */
  writeHead(w: Writer, entry: Entry, payloadLength: number): void {
    this.encode(w, entry, undefined, payloadLength);
  }

  private encode(w: Writer, entry: Entry, extra: Uint8Array | undefined, declared: number | undefined): void {
    const spec = this.index === 0 ? this.first : this.main;
    const path = `entries[${this.index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw shapeError(path, 'expected an object', this.file);
    let body: Entry = entry;
    if ('extra' in entry) {
      const { extra: x, ...rest } = entry;
      body = rest;
      if (x !== undefined && extra === undefined && declared === undefined) extra = x;
    }
    if (extra !== undefined && !(extra instanceof Uint8Array)) throw shapeError(`${path}.extra`, 'expected a Buffer', this.file);
    const start = w.pos;
    w.ensure(4);
    w.pos += 4;
    try {
      encodeMessageTo(w, spec, body, path);
    } catch (e) {
      w.pos = start;
      if (e instanceof ShapeError) throw shapeError(e.path, e.message, this.file);
      throw e;
    }
    w.buf.writeUInt32LE(w.pos - start - 4, start);
    const have = declared ?? extra?.length ?? 0;
    if (this.info.payload === 'none' || this.info.payload === 'pagemap') {
      if (have > 0) {
        w.pos = start;
        throw shapeError(`${path}.extra`, `${this.info.name} entries carry no payload`, this.file);
      }
    } else {
      const want = expectedExtra(this.info, body, this.index);
      if (want !== undefined && want !== have) {
        w.pos = start;
        throw shapeError(`${path}.extra`, `payload is ${have} bytes but the entry says ${want}`, this.file);
      }
      if (extra) w.bytes(extra);
    }
    this.index++;
  }
}

/** Resolve a kind given by crit name; throws IMG_BAD_MAGIC for unknown names. */
export function kindInfo(name: string, file?: string): MagicInfo {
  const info = magicByName(name);
  if (!info || info.message === null) throw shapeError('magic', `unknown image kind ${JSON.stringify(name)}`, file);
  return info;
}

/** Encode a whole image to bytes (magic words + entries + payloads). */
export function encodeImage(image: Image<object>, opts: { file?: string } = {}): Buffer {
  if (typeof image !== 'object' || image === null) throw shapeError('<image>', 'expected an object', opts.file);
  if (typeof image.magic !== 'string') throw shapeError('magic', 'expected a string', opts.file);
  if (!Array.isArray(image.entries)) throw shapeError('entries', 'expected an array', opts.file);
  const info = kindInfo(image.magic, opts.file);
  const w = new Writer(4096);
  w.bytes(magicHeader(info));
  const enc = new EntryEncoder(info, opts.file);
  for (const e of image.entries) enc.write(w, e as Entry);
  return Buffer.from(w.view());
}
