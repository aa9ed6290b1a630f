/**
 * Private: the only place where crit talks to @crtools/images (framing, protobuf, crit-JSON
 * conversion all live there). Everything else in crit works on crit JSON text or values.
 */
import type { Writable } from 'node:stream';
import { critJsonChunks, encodeCritJson, openImage, readImageFile, toCritValue, type Entry, type Image } from '@crtools/images';
import type { CritImage } from './image-dir.js';
import type { Input } from './io.js';
import type { Sink } from './sink.js';

/** Stream the crit JSON text of an image into a sink (no trailing newline). */
export async function decodeTo(input: Input, sink: Sink, opts: { pretty: boolean; name: string }): Promise<void> {
  const stream = openImage(input, { file: opts.name });
  try {
    for await (const chunk of critJsonChunks(stream, { pretty: opts.pretty, chunk: 1 << 16 })) {
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

/**
 * Encode a parsed crit JSON document (integers beyond 2^53 as bigint) into an image written
 * to `output`.
 */
export async function encodeValue(doc: unknown, output: Writable, name: string): Promise<void> {
  const bytes = encodeCritJson(doc, { file: name });
  await new Promise<void>((resolve, reject) => {
    output.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
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
  return (await readImageFile(`${dir}/${file}`)) as unknown as CritImage;
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
