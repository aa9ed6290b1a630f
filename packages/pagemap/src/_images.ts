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

/** A pagemap entry as read from an image, normalised like CRIU's init_compat_pagemap_entry. */
export interface RawPagemapEntry {
  vaddr: bigint;
  nrPages: bigint;
  flags: number;
}

export interface PagemapImage {
  pagesId: number;
  entries: RawPagemapEntry[];
}

function bad(path: string, msg: string, entry?: number): CrtoolsError {
  return new CrtoolsError('PAGEMAP_BAD_IMAGE', `${path}${entry === undefined ? '' : `: entry ${entry}`}: ${msg}`, {
    exitCode: ExitCode.BAD_INPUT,
    context: { path, image: path, entry },
  });
}

function toBig(v: unknown): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) return BigInt(v);
  return undefined;
}

/** Flag names as crit prints them, in case the images layer hands flags back as names. */
const FLAG_NAMES: Record<string, number> = Object.fromEntries(Object.entries(PE).map(([k, v]) => [`PE_${k}`, v]));

function toFlags(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (/^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) return Number(v);
    let f = 0;
    for (const part of v.split('|').map((s) => s.trim()).filter(Boolean)) {
      const bit = FLAG_NAMES[part];
      if (bit === undefined) return undefined;
      f |= bit;
    }
    return f;
  }
  return undefined;
}

export async function readPagemapImage(path: string): Promise<PagemapImage> {
  let img: { magic: string; entries: Record<string, unknown>[] };
  try {
    img = (await images.readImageFile(path)) as typeof img;
  } catch (e) {
    if (isCrtoolsError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CrtoolsError('PAGEMAP_NO_IMAGE', `${path}: no such image`, { exitCode: ExitCode.BAD_INPUT, context: { path }, cause: e });
    }
    throw bad(path, `cannot decode (${code ?? (e as Error).message ?? String(e)})`);
  }
  if (img.magic !== 'PAGEMAP') throw bad(path, `not a pagemap image (magic ${img.magic})`);
  // CRIU treats an image with no head at all as "no pages" (empty_image in open_page_read_at)
  if (img.entries.length === 0) return { pagesId: 0, entries: [] };
  const head = img.entries[0];
  const pagesId = Number(toBig(head.pages_id) ?? -1n);
  if (!(pagesId >= 0)) throw bad(path, 'head has no pages_id', 0);
  const entries: RawPagemapEntry[] = [];
  for (let i = 1; i < img.entries.length; i++) {
    const e = img.entries[i];
    const vaddr = toBig(e.vaddr);
    if (vaddr === undefined) throw bad(path, 'no vaddr', i);
    const nr = toBig(e.nr_pages) ?? toBig(e.compat_nr_pages);
    if (nr === undefined) throw bad(path, 'no nr_pages', i);
    let flags = toFlags(e.flags);
    if (e.flags !== undefined && flags === undefined) throw bad(path, `bad flags ${String(e.flags)}`, i);
    // Images of old CRIU versions: in_parent instead of PE_PARENT, no flags meaning present.
    if (e.in_parent === true) flags = (flags ?? 0) | PE.PARENT;
    else if (flags === undefined) flags = PE.PRESENT;
    entries.push({ vaddr, nrPages: nr, flags });
  }
  return { pagesId, entries };
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
