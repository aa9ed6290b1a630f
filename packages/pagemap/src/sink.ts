/**
 * Where a dump's pagemap entries and page data go: a local image directory
 * (pagemap-<id>.img + pages-<pages_id>.img) or a page server (see page-server.ts).
 */
import type { FileHandle } from 'node:fs/promises';
// node:fs/promises taken when first called: loading it (node's readline and file watchers come
// with it) costs a few ms of every start-up
const fsp = () => process.getBuiltinModule('node:fs/promises');
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PE_PARENT, PE_PRESENT } from './constants.js';
import { createPagemapImageWriter, type PagemapImageWriter } from './_images.js';
import type { PlannedEntry } from './plan.js';
import { openPageReader, type PageReader } from './reader.js';
import { dedupRange, type PunchHoleFn } from './dedup.js';

/**
 * One step of a dump's output: an entry to record, and/or page data belonging to the most
 * recent entry (an entry's data may arrive in several items, in address order).
 */
export interface SinkItem {
  entry?: PlannedEntry;
  data?: Buffer;
}

export interface PagemapSink {
  /** Whether a parent snapshot of this image exists (holes are allowed). */
  readonly hasParent: boolean;
  write(items: readonly SinkItem[]): Promise<void>;
  close(): Promise<void>;
}

export type PagemapKind = 'task' | 'shmem';

/** File names as CRIU spells them. */
export function pagemapFileName(kind: PagemapKind, id: number | bigint): string {
  return kind === 'shmem' ? `pagemap-shmem-${id}.img` : `pagemap-${id}.img`;
}
export function pagesFileName(pagesId: number): string {
  return `pages-${pagesId}.img`;
}

/**
 * Hands out pages image ids the way one CRIU process does: 1, 2, 3… in the order pagemaps are
 * opened (a page server starts at 0x10001 so its ids never clash with a dump's shmem ids).
 */
export function createPagesIdAllocator(first = 1): () => number {
  let next = first;
  return () => next++;
}

export interface LocalSinkOptions {
  dir: string;
  /** pid for 'task', shmid for 'shmem'. */
  id: number | bigint;
  kind?: PagemapKind;
  pagesId: number;
  /**
   * Parent snapshot reader: 'auto' (default) opens `<dir>/parent` when it holds this pagemap,
   * null disables. Holes (PE_PARENT entries) are checked against it.
   */
  parent?: PageReader | null | 'auto';
  /** CRIU's --auto-dedup: punch the parent's copy of every page written again. */
  autoDedup?: boolean;
  punchHole?: PunchHoleFn;
}

export class LocalSink implements PagemapSink {
  readonly pagemapPath: string;
  readonly pagesPath: string;
  private constructor(
    private readonly pm: PagemapImageWriter,
    private readonly fh: FileHandle,
    readonly parent: PageReader | null,
    private readonly o: LocalSinkOptions,
    paths: { pagemapPath: string; pagesPath: string },
  ) {
    this.pagemapPath = paths.pagemapPath;
    this.pagesPath = paths.pagesPath;
  }

  get hasParent(): boolean {
    return this.parent !== null;
  }

  static async open(o: LocalSinkOptions): Promise<LocalSink> {
    const kind = o.kind ?? 'task';
    let parent: PageReader | null = null;
    if (o.parent === undefined || o.parent === 'auto') {
      const pdir = join(o.dir, 'parent');
      if (existsSync(join(pdir, pagemapFileName(kind, o.id)))) parent = await openPageReader({ dir: pdir, id: o.id, kind });
    } else parent = o.parent;
    const pagemapPath = join(o.dir, pagemapFileName(kind, o.id));
    const pagesPath = join(o.dir, pagesFileName(o.pagesId));
    const pm = await createPagemapImageWriter(pagemapPath, o.pagesId);
    let fh: FileHandle;
    try {
      fh = await fsp().open(pagesPath, 'w', 0o600);
    } catch (e) {
      await pm.abort().catch(() => {});
      parent?.close();
      throw e;
    }
    return new LocalSink(pm, fh, parent, o, { pagemapPath, pagesPath });
  }

  async write(items: readonly SinkItem[]): Promise<void> {
    const data: Buffer[] = [];
    for (const it of items) {
      const e = it.entry;
      if (e) {
        if (e.flags & PE_PARENT && !(e.flags & PE_PRESENT) && this.parent) {
          // check_pagehole_in_parent: the parent must cover the hole
          try {
            this.parent.locate(e.vaddr, e.nrPages);
          } catch (err) {
            throw new CrtoolsError(
              'PAGEMAP_HOLE_NOT_IN_PARENT',
              `${this.pagemapPath}: hole ${e.vaddr.toString(16)}+${e.nrPages} pages not found in parent`,
              { exitCode: ExitCode.BAD_INPUT, context: { path: this.pagemapPath, vaddr: e.vaddr }, cause: err },
            );
          }
        } else if (e.flags & PE_PRESENT && this.o.autoDedup && this.parent) {
          await dedupRange(this.parent, e.vaddr, e.nrPages, this.o.punchHole);
        }
        await this.pm.writeEntry(e.vaddr, e.nrPages, e.flags);
      }
      if (it.data && it.data.length) data.push(it.data);
    }
    if (data.length) await writevAll(this.fh, data);
  }

  async close(): Promise<void> {
    try {
      await this.pm.close();
    } finally {
      await this.fh.close();
      this.parent?.close();
    }
  }
}

async function writevAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let done = 0;
  // writev may write less than asked; continue from where it stopped
  while (done < total) {
    let skip = done;
    const rest: Buffer[] = [];
    for (const b of bufs) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip ? b.subarray(skip) : b);
      skip = 0;
    }
    const { bytesWritten } = await fh.writev(rest.slice(0, 1024));
    if (bytesWritten <= 0) throw new Error('writev wrote nothing');
    done += bytesWritten;
  }
}

export function openLocalSink(o: LocalSinkOptions): Promise<LocalSink> {
  return LocalSink.open(o);
}

