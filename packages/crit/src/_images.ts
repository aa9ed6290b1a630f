/**
 * Private: the only place where crit talks to @crtools/images (framing, protobuf, crit-JSON
 * conversion all live there). Everything else in crit works on crit JSON text or values.
 */
import type { Writable } from 'node:stream';
import { isCrtoolsError } from '@crtools/common';
import { createImageWriter, critJsonBytes, decodeImage, fromCritJson, magicByName, openImage, readImageFileSync, toCritValue, type Entry, type Image, type ImageWriter } from '@crtools/images';
import type { CritImage } from './image-dir.js';
// crtools has one JSON reader (bigint-exact, streams entries): crit uses the images one
export { encodeBytes, jsonBigint, jsonNumber, parseJson, parseImageFileName, PyFloat, pyDumps, pyNumber, pyString, readImageDocument, JsonSyntaxError, type JsonValue } from '@crtools/images';
export {
  VMA_ANON_SHARED, VMA_AREA_REGULAR, VMA_AREA_SOCKET, VMA_AREA_STACK, VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL, VMA_FILE_PRIVATE, VMA_FILE_SHARED,
  PE, TASK_STATE,
} from '@crtools/images';
import { badInput } from './errors.js';
import type { Input } from './io.js';
import type { Sink } from './sink.js';

/** Stream the crit JSON text of an image into a sink (no trailing newline). */
export async function decodeTo(input: Input, sink: Sink, opts: { pretty: boolean; name: string }): Promise<void> {
  const stream = openImage(input, { file: opts.name });
  try {
    for await (const chunk of critJsonBytes(stream, { pretty: opts.pretty, chunk: 1 << 16 })) {
      await sink.write(chunk);
      if (sink.closed) break;
    }
  } finally {
    await stream.close();
  }
}

/**
 * The crit value of an image with each payload replaced by its size, as `crit show --nopl`
 * prints it ('... <4KB>'); ghost file contents are left out altogether, as crit does.
 */
export async function decodeNoPayload(input: Input, opts: { pretty: boolean; name: string }, sizeText: (n: number) => string): Promise<{ magic: string; entries: unknown[] }> {
  const entries: Entry[] = [];
  const stream = openImage(input, { file: opts.name });
  for await (const b of stream.batches()) entries.push(...b);
  const magic = (await stream.header()).name;
  const sizes: (number | undefined)[] = [];
  for (const e of entries) {
    sizes.push(e.extra === undefined ? undefined : payloadSize(magic, e));
    delete e.extra;
  }
  const v = toCritValue({ magic, entries } as Image, { pretty: opts.pretty });
  if (magic !== 'GHOST_FILE') {
    v.entries.forEach((e, i) => {
      const n = sizes[i];
      if (n !== undefined) (e as Record<string, unknown>).extra = sizeText(n);
    });
  }
  return v;
}

const n = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);

/** The payload size crit's extra handlers report with --nopl (their `skip`). */
function payloadSize(magic: string, e: Entry): number {
  switch (magic) {
    case 'PIPES_DATA':
    case 'FIFO_DATA':
      return n(e.bytes);
    case 'SK_QUEUES':
      return n(e.length);
    case 'TCP_STREAM':
      return n(e.inq_len) + n(e.outq_len);
    case 'IPCNS_SEM':
      return 2 * n(e.nsems);
    case 'IPCNS_SHM':
      return n(e.size);
    case 'BPFMAP_DATA':
      return n(e.keys_bytes) + n(e.values_bytes);
    default:
      return e.extra?.length ?? 0;
  }
}

export interface CritEncoder {
  magic(name: string): void;
  entry(e: unknown, index: number): Promise<void>;
  close(): Promise<void>;
}

const BATCH = 4096;

/**
 * Encode crit JSON entries (parsed values; integers beyond 2^53 as bigint) as they arrive,
 * converting them in batches with the images package and writing them through its streaming
 * writer. Kinds whose first entry has its own message (pagemap head, ghost file) get that
 * first entry put in front of every batch so each converts with the right message.
 */
export function createCritEncoder(output: Writable, name: string): CritEncoder {
  let writer: ImageWriter | undefined;
  let magic = '';
  let hasFirst = false;
  let head: unknown;
  let batch: unknown[] = [];
  let batchStart = 0;

  async function flush(): Promise<void> {
    if (!writer || batch.length === 0) return;
    const lead = hasFirst && batchStart > 0;
    const entries = lead ? [head, ...batch] : batch;
    let img: Image;
    try {
      img = fromCritJson({ magic, entries }, { file: name });
    } catch (e) {
      // the images package numbers entries within the batch: renumber them in the document
      if (isCrtoolsError(e)) {
        const shift = batchStart - (lead ? 1 : 0);
        e.message = e.message.replace(/entries\[(\d+)\]/, (_m, k: string) => `entries[${Number(k) + shift}]`);
      }
      throw e;
    }
    const out = lead ? img.entries.slice(1) : img.entries;
    for (const x of out) await writer.write(x);
    batchStart += batch.length;
    batch = [];
  }

  return {
    magic(m: string) {
      const info = magicByName(m);
      if (!info || info.message === null) throw badInput('CRIT_BAD_JSON', name, undefined, `magic: unknown image kind ${JSON.stringify(m)}`);
      writer = createImageWriter(output, m);
      magic = writer.magic;
      hasFirst = info.firstMessage !== undefined;
    },
    async entry(e: unknown, index: number) {
      if (index === 0) head = e;
      batch.push(e);
      if (batch.length >= BATCH) await flush();
    },
    async close() {
      await flush();
      await writer?.close();
    },
  };
}

/** Magic and number of entries as decode shows them (the pagemap head not counted, as crit). */
export async function countCritEntries(input: Input, name: string): Promise<{ magic: string; count: number }> {
  const stream = openImage(input, { file: name });
  let count = 0;
  for await (const b of stream.batches()) count += b.length;
  const magic = (await stream.header()).name;
  if (magic === 'PAGEMAP' && count > 0) count--;
  return { magic, count };
}

/**
 * One image of a directory for the explorers: entries keyed by CRIU field names as crit shows
 * them (enums by name), straight from the decoder, so 64-bit values are bigint and bytes are
 * Buffers (the explorers read both forms); no detour through JSON text.
 */
export async function loadCritImage(dir: string, file: string): Promise<CritImage> {
  // read synchronously: images of a directory are small and many, and the explorers wait for
  // each in turn (a thread-pool round trip per file costed more than the decoding itself)
  return readImageFileSync(`${dir}/${file}`) as unknown as CritImage;
}

/** One image held in memory (a file of an archive), as loadCritImage gives it; `name` for errors. */
export function critImageFromBuffer(buf: Buffer, name: string): CritImage {
  return decodeImage(buf, { file: name }) as unknown as CritImage;
}

/** pages_id in the head of a pagemap image, or undefined if it cannot be read. */
export async function pagesIdOf(file: string): Promise<number | undefined> {
  const stream = openImage(file, { name: 'PAGEMAP', chunkSize: 4096 });
  try {
    for await (const e of stream) return n(e.pages_id);
  } catch {
    return undefined;
  } finally {
    await stream.close();
  }
  return undefined;
}
