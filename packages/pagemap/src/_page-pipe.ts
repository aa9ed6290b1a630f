/**
 * Private: a model of how CRIU's page pipe cuts a stream of pages into pagemap entries.
 *
 * CRIU collects the pages to dump into pipe buffers ("ppb"). Each buffer holds pages of one
 * kind (lazy or not) and at most one pipe's worth of pages; consecutive pages in one buffer
 * form one iovec, and every iovec becomes one pagemap entry. Pages that live in the parent
 * snapshot become "holes", merged while contiguous and written between the iovecs in address
 * order. In chunk mode (a regular dump) at most NR_PIPES_PER_CHUNK buffers exist at a time;
 * when one more is needed the chunk is written out and the buffers are recycled, which also
 * ends the current hole run. Outside chunk mode (pre-dump, lazy dump) a new buffer may share
 * the pipe of the previous one of its kind and then has only the pipe's remaining room.
 *
 * Only the resulting sequence of entries matters to us, so this keeps counters, not pipes.
 */
import { PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT } from './constants.js';
import type { PlannedEntry } from './plan.js';

/** Buffer kind: CRIU's PPB_LAZY bit. */
export const PPB_LAZY = 1;

interface Buf {
  flags: number;
  pagesIn: number;
  pipeOff: number;
  /** The last iovec (entry) of this buffer, extended while pages are contiguous. */
  lastIov: PlannedEntry | null;
}

export interface PagePipeOptions {
  chunkMode: boolean;
  /** opts.lazy_pages: lazy buffers get their own pipe-sharing chain. */
  lazyPages: boolean;
  /** Whether lazy buffers' pages are stored in the pages image (xfer->transfer_lazy). */
  transferLazy: boolean;
  pipeCapacityPages: number;
  pipesPerChunk: number;
}

export class PagePipeModel {
  readonly entries: PlannedEntry[] = [];
  private cur: Buf;
  private nrPipes = 0;
  private freeBufs = 0;
  private prev: [Buf | null, Buf | null] = [null, null];
  private curHole: PlannedEntry | null = null;
  /** CRIU's CNT_PAGE_PIPES and CNT_PAGE_PIPE_BUFS: pipes created, buffers allocated. */
  pipesCreated = 0;
  bufsAllocated = 0;
  private readonly step = BigInt(PAGE_SIZE);

  constructor(private readonly o: PagePipeOptions) {
    this.cur = this.grow(0) as Buf;
  }

  /** Add one page to dump. Mirrors page_pipe_add_page plus the -EAGAIN/flush/reinit loop. */
  addPage(addr: bigint, ppbFlags: number): void {
    this.addPages(addr, 1, ppbFlags);
  }

  /** Add `count` contiguous pages of one kind: the same as adding them one by one. */
  addPages(addr: bigint, count: number, ppbFlags: number): void {
    while (count > 0) {
      let k = this.tryAdd(addr, count, ppbFlags);
      if (k === 0) {
        let next = this.grow(ppbFlags);
        if (next === null) {
          this.flushChunk();
          // After a flush CRIU re-runs the add for the same page: the fresh buffer (kind 0) may
          // take it, otherwise one more recycled buffer is taken.
          k = this.tryAdd(addr, count, ppbFlags);
          if (k === 0) {
            next = this.grow(ppbFlags);
            if (next === null) throw new Error('page pipe model: no buffer after reinit');
          }
        }
        if (k === 0) {
          this.cur = next as Buf;
          k = this.tryAdd(addr, count, ppbFlags);
          if (k === 0) throw new Error('page pipe model: fresh buffer refused a page');
        }
      }
      addr += BigInt(k) * this.step;
      count -= k;
    }
  }

  /** Add one page that lives in the parent snapshot (page_pipe_add_hole with PP_HOLE_PARENT). */
  addHole(addr: bigint): void {
    this.addHoles(addr, 1);
  }

  addHoles(addr: bigint, count: number): void {
    const h = this.curHole;
    if (h && h.vaddr + BigInt(h.nrPages) * this.step === addr) {
      h.nrPages += count;
      return;
    }
    const e: PlannedEntry = { vaddr: addr, nrPages: count, flags: PE_PARENT };
    this.entries.push(e);
    this.curHole = e;
  }

  private xferFlags(ppbFlags: number): number {
    if (ppbFlags & PPB_LAZY) return (this.o.transferLazy ? PE_PRESENT : 0) | PE_LAZY;
    return PE_PRESENT;
  }

  private capacityLeft(b: Buf): boolean {
    return b.pagesIn + b.pipeOff < this.o.pipeCapacityPages;
  }

  /** Puts as many of `count` pages as fit into the current buffer; returns how many. */
  private tryAdd(addr: bigint, count: number, ppbFlags: number): number {
    const b = this.cur;
    if (b.flags !== ppbFlags) return 0;
    const room = this.o.pipeCapacityPages - (b.pagesIn + b.pipeOff);
    if (room <= 0) return 0;
    const k = Math.min(room, count);
    const last = b.lastIov;
    if (last && last.vaddr + BigInt(last.nrPages) * this.step === addr) {
      last.nrPages += k;
    } else {
      const e: PlannedEntry = { vaddr: addr, nrPages: k, flags: this.xferFlags(ppbFlags) };
      this.entries.push(e);
      b.lastIov = e;
    }
    b.pagesIn += k;
    return k;
  }

  /** page_pipe_grow: a recycled buffer, a new one, or null for -EAGAIN. */
  private grow(ppbFlags: number): Buf | null {
    if (this.freeBufs > 0) {
      this.freeBufs--;
      return { flags: ppbFlags, pagesIn: 0, pipeOff: 0, lastIov: null };
    }
    if (this.o.chunkMode && this.nrPipes === this.o.pipesPerChunk) return null;
    const type = ppbFlags & PPB_LAZY && this.o.lazyPages ? 1 : 0;
    const prev = this.o.chunkMode || this.nrPipes === 0 ? null : this.prev[type];
    const b: Buf = { flags: ppbFlags, pagesIn: 0, pipeOff: 0, lastIov: null };
    this.bufsAllocated++;
    if (prev && this.capacityLeft(prev)) {
      b.pipeOff = prev.pagesIn + prev.pipeOff; // shares the previous pipe
    } else {
      this.nrPipes++;
      this.pipesCreated++;
    }
    this.prev[type] = b;
    return b;
  }

  /** The chunk is written out: buffers are recycled, hole merging restarts. */
  private flushChunk(): void {
    this.freeBufs = this.nrPipes;
    this.curHole = null;
    this.cur = this.grow(0) as Buf;
  }
}
