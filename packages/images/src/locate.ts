/**
 * Reading an image by position: each entry decoded, its payload only located (where it starts
 * in the file and how long it is), so that images whose payloads are large (ghost files of up
 * to --ghost-limit) are read in memory bounded by the largest entry, and the payload bytes are
 * read by whoever needs them, when they need them.
 */
// node:fs/promises taken when first called: loading it (node's readline and file watchers come
// with it) costs a few ms of every start-up
const fsp = () => process.getBuiltinModule('node:fs/promises');
import { imageError, ImageErrorCode } from './errors.js';
import { EntryParser, MAX_ENTRY_BYTES, parseHeader, type Entry, type ParseContext } from './framing.js';
import type { MagicInfo } from './magic.js';

/** Where an entry's payload lies in the image file. */
export interface PayloadSpan {
  offset: number;
  length: number;
}

export interface LocatedEntry {
  /** the decoded entry (no `extra`: the payload is only located) */
  entry: Entry;
  /** the file offset of the entry's length word */
  offset: number;
  /** the payload after it, when the kind carries one (length 0 possible) */
  payload?: PayloadSpan;
}

export interface LocatedImage {
  info: MagicInfo;
  magic: string;
  entries: LocatedEntry[];
}

/**
 * Read the entries of the image at `path` (of kind `opts.name` when given), locating the
 * payloads instead of reading them. Every kind with payloads but IPCNS_MSG can be read so.
 */
export async function locateEntries(path: string, opts: { name?: string } = {}): Promise<LocatedImage> {
  const fh = await fsp().open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const read = async (at: number, n: number): Promise<Buffer> => {
      const b = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(b, got, n - got, at + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return b.subarray(0, got);
    };
    const ctx: ParseContext = { file: path, base: 0 };
    const head = parseHeader(await read(0, Math.min(8, size)), true, ctx, opts.name)!;
    const parser = new EntryParser(head.info, ctx);
    const carries = head.info.payload !== 'none' && head.info.payload !== 'pagemap';
    const entries: LocatedEntry[] = [];
    let pos = head.length;
    while (pos < size) {
      if (size - pos < 4) throw imageError(ImageErrorCode.TRUNCATED, { file: path, offset: pos }, `${size - pos} stray bytes where an entry length was expected`);
      const len = (await read(pos, 4)).readUInt32LE(0);
      const index = parser.index;
      if (len > MAX_ENTRY_BYTES) throw imageError(ImageErrorCode.BAD_ENTRY, { file: path, offset: pos }, `entry ${index} length ${len} is over the ${MAX_ENTRY_BYTES} bytes an entry may have`);
      if (len > size - pos - 4) throw imageError(ImageErrorCode.TRUNCATED, { file: path, offset: pos }, `entry ${index} length ${len} runs past the end of the file (${size - pos - 4} bytes left)`);
      const body = await read(pos + 4, len);
      ctx.base = pos + 4;
      const entry = parser.decodeAt(body, 0, len, index);
      const at = pos + 4 + len;
      const plen = parser.payloadLength(entry, size - at);
      if (plen > size - at) throw imageError(ImageErrorCode.TRUNCATED, { file: path, offset: at }, `entry ${index} payload of ${plen} bytes runs past the end of the file (${size - at} bytes left)`);
      entries.push(carries ? { entry, offset: pos, payload: { offset: at, length: plen } } : { entry, offset: pos });
      pos = at + plen;
    }
    return { info: head.info, magic: head.info.name, entries };
  } finally {
    await fh.close();
  }
}
