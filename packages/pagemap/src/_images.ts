/**
 * Private: the only place that talks to @crtools/images. A pagemap image is a PAGEMAP-magic
 * image whose first entry is a pagemap_head {pages_id} and whose other entries are
 * pagemap_entry {vaddr, compat_nr_pages, in_parent?, flags?, nr_pages?}.
 */
import { CrtoolsError, ExitCode, isCrtoolsError } from '@crtools/common';
import * as images from '@crtools/images';
import { PE } from '@crtools/images/facts';

// the VMA status bits and PE flags are the format's, re-exported by constants.ts
export { PE } from '@crtools/images/facts';
export {
  VMA_AREA_REGULAR, VMA_AREA_STACK, VMA_AREA_VSYSCALL, VMA_AREA_VDSO, VMA_AREA_HEAP, VMA_FILE_PRIVATE, VMA_FILE_SHARED,
  VMA_ANON_SHARED, VMA_ANON_PRIVATE, VMA_AREA_SYSVIPC, VMA_AREA_SOCKET, VMA_AREA_VVAR, VMA_AREA_AIORING, VMA_AREA_MEMFD,
  VMA_AREA_SHSTK, VMA_AREA_GUARD, VMA_AREA_UPROBES, VMA_UNSUPP,
} from '@crtools/images';

/**
 * A pagemap image's entries as columns of plain numbers, as the image has them (pagemapEntryPages
 * and pagemapEntryFlags normalise them). Addresses are page aligned (checked by the reader), so
 * exact as numbers; nothing is made per entry (a 4 GiB area is ~4,600 entries).
 */
export interface PagemapColumns {
  pagesId: number;
  count: number;
  /** NaN: absent */
  vaddr: Float64Array;
  nrPages: Float64Array;
  compatNrPages: Float64Array;
  inParent: Float64Array;
  flags: Float64Array;
}

function bad(path: string, msg: string, entry?: number): CrtoolsError {
  return new CrtoolsError('PAGEMAP_BAD_IMAGE', `${path}${entry === undefined ? '' : `: entry ${entry}`}: ${msg}`, {
    exitCode: ExitCode.BAD_INPUT,
    context: { path, image: path, entry },
  });
}

export function readPagemapImage(path: string): PagemapColumns {
  let img: images.ImageColumns;
  try {
    img = images.readImageColumns(path, { fields: ['vaddr', 'compat_nr_pages', 'in_parent', 'flags', 'nr_pages'], name: 'PAGEMAP' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CrtoolsError('PAGEMAP_NO_IMAGE', `${path}: no such image`, { exitCode: ExitCode.BAD_INPUT, context: { path }, cause: e });
    }
    if (isCrtoolsError(e) && e.code === 'IMG_BAD_MAGIC') throw bad(path, `not a pagemap image (${e.message})`);
    if (isCrtoolsError(e)) throw e;
    throw bad(path, `cannot decode (${code ?? (e as Error).message ?? String(e)})`);
  }
  // CRIU treats an image with no head at all as "no pages" (empty_image in open_page_read_at)
  if (!img.head) return { pagesId: 0, count: 0, vaddr: new Float64Array(0), nrPages: new Float64Array(0), compatNrPages: new Float64Array(0), inParent: new Float64Array(0), flags: new Float64Array(0) };
  const pagesId = Number(img.head.pages_id ?? -1);
  if (!(pagesId >= 0)) throw bad(path, 'head has no pages_id', 0);
  const c = img.columns;
  return { pagesId, count: img.count, vaddr: c.vaddr!, nrPages: c.nr_pages!, compatNrPages: c.compat_nr_pages!, inParent: c.in_parent!, flags: c.flags! };
}

/**
 * Entry i of a pagemap image normalised like CRIU's init_compat_pagemap_entry: its page count
 * (nr_pages, else compat_nr_pages; NaN: neither) and its flags (in_parent of old images is
 * PE_PARENT; no flags at all means present). For the reader's one pass over the entries.
 */
export function pagemapEntryPages(img: PagemapColumns, i: number): number {
  const n = img.nrPages[i]!;
  return n === n ? n : img.compatNrPages[i]!;
}

export function pagemapEntryFlags(img: PagemapColumns, i: number): number {
  const f = img.flags[i]!;
  if (img.inParent[i] === 1) return (f === f ? f : 0) | PE.PARENT;
  return f === f ? f : PE.PRESENT;
}

export interface PagemapImageWriter {
  writeEntry(vaddr: bigint, nrPages: number, flags: number): Promise<void>;
  close(): Promise<void>;
  /** Close and remove the partial file. */
  abort(): Promise<void>;
}

/** Opens pagemap-*.img for writing and writes its head. Entries are written as CRIU 4.2 does:
 * compat_nr_pages 0, nr_pages and flags set. */
export async function createPagemapImageWriter(path: string, pagesId: number): Promise<PagemapImageWriter> {
  const w = await images.createImageWriter(path, 'PAGEMAP');
  await w.write({ pages_id: pagesId });
  return {
    async writeEntry(vaddr, nrPages, flags) {
      await w.write({ vaddr, compat_nr_pages: 0, flags, nr_pages: BigInt(nrPages) });
    },
    async close() {
      await w.close();
    },
    async abort() {
      await w.abort();
    },
  };
}
