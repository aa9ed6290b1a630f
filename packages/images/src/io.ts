import type { FileHandle } from 'node:fs/promises';
// node:fs/promises taken when first called: loading it (node's readline and file watchers come
// with it) costs a few ms of every start-up
const fsp = () => process.getBuiltinModule('node:fs/promises');
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Writer } from './codec.js';
import { imageError, ImageErrorCode } from './errors.js';
import { decodeImage, encodeImage, EntryEncoder, EntryParser, kindInfo, parseHeader, type Entry, type Image, type ParseContext } from './framing.js';
import { magicHeader, type MagicInfo } from './magic.js';
import { isPayloadSource, type PayloadSource } from './payload.js';

/** Read and decode a whole image file. */
export async function readImageFile<E extends object = Entry>(path: string, opts: { name?: string } = {}): Promise<Image<E>> {
  // (read at once: the whole file is decoded in memory anyway, and a round trip through libuv's
  // thread pool for each of open, read and close costs more than the read of a small image)
  return readImageFileSync<E>(path, opts);
}

/** Synchronous variant of readImageFile. */
export function readImageFileSync<E extends object = Entry>(path: string, opts: { name?: string } = {}): Image<E> {
  return decodeImage<E>(readFileSync(path), { name: opts.name, file: path });
}

export interface OpenImageOptions {
  /** Expected kind; a different magic is IMG_BAD_MAGIC. */
  name?: string;
  /** Read size for files (default 1 MiB). */
  chunkSize?: number;
  /** File name for error messages when reading a stream. */
  file?: string;
}

/**
 * A streaming image reader: iterate entries (or batches of entries) without holding the
 * whole file; memory stays bounded by the chunk size and the largest entry.
 */
export interface ImageStream extends AsyncIterable<Entry> {
  /** The kind, once the magic has been read (resolves after iteration starts or via header()). */
  header(): Promise<MagicInfo>;
  /** Entries in arrays of whatever one read chunk held (fast path for huge images). */
  batches(): AsyncIterable<Entry[]>;
  /**
   * For kinds without payloads (everything but pipe/socket data, ghost files, IPC contents):
   * complete entries left undecoded, as spans of the read buffer (the fast path of crit decode).
   */
  spans(): AsyncIterable<EntrySpans>;
  /** Stop reading and close the file (also done automatically at the end / on break). */
  close(): Promise<void>;
}

/** Entries of one read chunk, not decoded: entry `index + k` is buf[spans[2k], spans[2k+1]). */
export interface EntrySpans {
  buf: Buffer;
  spans: number[];
  index: number;
  /** Decode entry `index + k` (with the reader's errors: file, offset, entry number). */
  decode(k: number): Entry;
}

type ChunkSource = { next(): Promise<Buffer | null>; close(): Promise<void> };

function fileSource(path: string, chunkSize: number): ChunkSource {
  let fh: FileHandle | undefined;
  let closed = false;
  return {
    async next() {
      if (closed) return null;
      if (!fh) {
        fh = await fsp().open(path, 'r');
        // small images (most of them) do not need a full-size read buffer
        const { size } = await fh.stat();
        if (size > 0 && size < chunkSize) chunkSize = Math.max(size + 1, 4096);
      }
      const b = Buffer.allocUnsafe(chunkSize);
      const { bytesRead } = await fh.read(b, 0, chunkSize, null);
      return bytesRead === 0 ? null : b.subarray(0, bytesRead);
    },
    async close() {
      closed = true;
      const f = fh;
      fh = undefined;
      if (f) await f.close();
    },
  };
}

function streamSource(stream: Readable | AsyncIterable<Uint8Array>): ChunkSource {
  const it = (stream as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return {
    async next() {
      const r = await it.next();
      if (r.done) return null;
      const c = r.value;
      return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    },
    async close() {
      await it.return?.();
      if (typeof (stream as Readable).destroy === 'function') (stream as Readable).destroy();
    },
  };
}

/** Open an image file (or a readable stream of its bytes) for streaming. */
export function openImage(src: string | Readable | AsyncIterable<Uint8Array>, opts: OpenImageOptions = {}): ImageStream {
  const file = typeof src === 'string' ? src : opts.file;
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  let source: ChunkSource | undefined;
  let info: MagicInfo | undefined;
  let parser: EntryParser | undefined;
  let pending: Buffer = Buffer.alloc(0);
  let consumed = 0; // file offset of pending[0]
  let eof = false;
  let done = false;

  const getSource = () => (source ??= typeof src === 'string' ? fileSource(src, chunkSize) : streamSource(src));

  async function more(): Promise<boolean> {
    if (eof) return false;
    const c = await getSource().next();
    if (c === null) {
      eof = true;
      return false;
    }
    pending = pending.length === 0 ? c : Buffer.concat([pending, c]);
    return true;
  }

  async function readHeader(): Promise<MagicInfo> {
    if (info) return info;
    try {
      return await readHeaderOnce();
    } catch (e) {
      await close(); // a caller that only asked for the header must not leak the file
      throw e;
    }
  }

  async function readHeaderOnce(): Promise<MagicInfo> {
    const ctx: ParseContext = { file, base: 0 };
    for (;;) {
      const h = parseHeader(pending, eof, ctx, opts.name);
      if (h) {
        info = h.info;
        pending = pending.subarray(h.length);
        consumed = h.length;
        parser = new EntryParser(h.info, ctx);
        return info;
      }
      await more();
    }
  }

  /** Run `step` over the unread bytes until it uses some (or the file ends). */
  async function next<T>(step: (p: EntryParser) => { used: number; value: T | null }): Promise<T | null> {
    await readHeader();
    const p = parser!;
    for (;;) {
      if (done) return null;
      p.ctx.base = consumed;
      const { used, value } = step(p);
      pending = pending.subarray(used);
      consumed += used;
      if (value !== null) return value;
      if (eof) {
        done = true;
        return null;
      }
      await more();
    }
  }

  const nextBatch = () =>
    next((p) => {
      const out: Entry[] = [];
      const used = p.feed(pending, 0, pending.length, eof, out);
      return { used, value: out.length > 0 ? out : null };
    });

  const nextSpans = () =>
    next<EntrySpans>((p) => {
      const spans: number[] = [];
      const index = p.index;
      const buf = pending;
      const base = consumed;
      const used = p.frame(buf, 0, buf.length, eof, spans);
      if (spans.length === 0) return { used, value: null };
      return {
        used,
        value: {
          buf,
          spans,
          index,
          decode(k: number): Entry {
            p.ctx.base = base;
            return p.decodeAt(buf, spans[2 * k]!, spans[2 * k + 1]!, index + k);
          },
        },
      };
    });

  async function close(): Promise<void> {
    done = true;
    if (source) await source.close();
  }

  /** Yield what `next` gives until it runs out; the file is closed at the end or on break. */
  async function* drain<T>(next: () => Promise<T | null>): AsyncGenerator<T> {
    try {
      for (;;) {
        const b = await next();
        if (!b) return;
        yield b;
      }
    } finally {
      await close();
    }
  }
  const batches = () => drain(nextBatch);
  const spans = () => drain(nextSpans);

  return {
    header: readHeader,
    batches,
    spans,
    close,
    async *[Symbol.asyncIterator]() {
      for await (const b of batches()) for (const e of b) yield e;
    },
  };
}

export interface WriteOptions {
  /** fsync the file before closing. */
  fsync?: boolean;
  /** Write to PATH.tmp and rename over PATH once complete. */
  atomic?: boolean;
}

/**
 * Encode and write a whole image file. Entries whose `extra` is a PayloadSource have their
 * payload copied from it in pieces (the image is then written as a stream).
 */
export async function writeImageFile(path: string, image: Image<object>, opts: WriteOptions = {}): Promise<void> {
  if (Array.isArray(image?.entries) && image.entries.some((e) => isPayloadSource((e as Entry | null)?.extra))) {
    const w = createImageWriter(path, image.magic, opts);
    try {
      for (const e of image.entries) await w.write(e);
      await w.close();
    } catch (e) {
      await w.abort();
      throw e;
    }
    return;
  }
  const bytes = encodeImage(image, { file: path });
  const target = opts.atomic ? `${path}.tmp` : path;
  // written at once, the bytes being all in memory: a dump of a small process writes ~20 images,
  // and the same through fs/promises cost 3-4 round trips through libuv's thread pool each
  // (and the pool's start-up)
  const fd = openSync(target, 'w', 0o600);
  try {
    writeFileSync(fd, bytes);
    if (opts.fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (opts.atomic) renameSync(target, path);
}

/** A streaming image writer. Entries are buffered and flushed in ~1 MiB writes. */
export interface ImageWriter {
  readonly magic: string;
  /**
   * Append one entry (and its payload for kinds that carry one; `entry.extra` works too). A
   * PayloadSource payload is copied in its pieces, never held whole.
   */
  write(entry: object, extra?: Uint8Array | PayloadSource): Promise<void>;
  /** Flush, optionally fsync, and close. */
  close(): Promise<void>;
  /** Close and remove a partially written file (path targets only). */
  abort(): Promise<void>;
}

const FLUSH_AT = 1024 * 1024;

/** Create a streaming writer for an image of kind `magic` (crit name) to a path or a Writable. */
export function createImageWriter(target: string | Writable, magic: string, opts: WriteOptions = {}): ImageWriter {
  const file = typeof target === 'string' ? target : undefined;
  const info = kindInfo(magic, file);
  const enc = new EntryEncoder(info, file);
  let w = new Writer(64 * 1024);
  w.bytes(magicHeader(info));
  // a file is written synchronously behind this promise API, as writeImageFile writes (each
  // write one flush of at most ~1 MiB or one payload piece, in order anyway): no round trips
  // through libuv's thread pool, nor its start-up for a small dump's pagemap image
  let fd: number | undefined;
  let closed = false;
  const path = typeof target === 'string' ? (opts.atomic ? `${target}.tmp` : target) : undefined;

  async function sink(bytes: Buffer): Promise<void> {
    if (bytes.length === 0) return;
    if (typeof target === 'string') {
      fd ??= openSync(path!, 'w', 0o600);
      writeFileSync(fd, bytes);
    } else {
      await new Promise<void>((resolve, reject) => {
        target.write(bytes, (err) => (err ? reject(err) : resolve()));
      });
    }
  }

  async function flush(): Promise<void> {
    const bytes = w.view();
    w = new Writer(Math.max(64 * 1024, bytes.length));
    await sink(bytes);
  }

  return {
    magic: info.name,
    async write(entry, extra) {
      if (closed) throw imageError(ImageErrorCode.BAD_ENTRY, { file }, 'write after close');
      const x = extra ?? (entry as Entry | null)?.extra;
      if (!isPayloadSource(x)) {
        enc.write(w, entry as Entry, extra as Uint8Array | undefined);
        if (w.pos >= FLUSH_AT) await flush();
        return;
      }
      enc.writeHead(w, entry as Entry, x.length);
      await flush();
      let n = 0;
      for await (const piece of x.pieces()) {
        n += piece.length;
        if (n > x.length) break;
        await sink(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
      }
      if (n !== x.length) {
        closed = true; // the image is broken: only abort() is left
        throw imageError(ImageErrorCode.BAD_ENTRY, { file }, `entry ${enc.index - 1}: its payload source gave ${n > x.length ? 'more than' : n} of the ${x.length} bytes it declared`);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await flush();
      if (typeof target === 'string') {
        fd ??= openSync(path!, 'w', 0o600);
        const f = fd;
        fd = undefined;
        try {
          if (opts.fsync) fsyncSync(f);
        } finally {
          closeSync(f);
        }
        if (opts.atomic) renameSync(path!, target);
      }
    },
    async abort() {
      closed = true;
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      if (path) rmSync(path, { force: true });
    },
  };
}
