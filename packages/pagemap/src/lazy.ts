/**
 * Which pages a lazy restore leaves to the lazy-pages daemon: the pages of the pagemap entries
 * flagged PE_LAZY, clipped to the areas that may be restored lazily (vmaCanBeLazy: private
 * anonymous, not locked, not huge pages, not vDSO/vvar/vsyscall). The restorer leaves exactly
 * these unfilled and registers those areas with userfaultfd; the daemon serves exactly these
 * (a fault elsewhere in a registered area is a zero page). One rule for both sides.
 */
import { PAGE_SIZE, PE_LAZY } from './constants.js';
import { vmaCanBeLazy, type PlanVma } from './plan.js';
import type { EntryColumns, ReaderEntry } from './reader.js';
import type { LazyPageSource } from './page-server.js';
import { procMemPageSource, type ProcMemPageSource } from './proc-mem-source.js';

const PAGE = BigInt(PAGE_SIZE);

/** A range of addresses [start, end), page aligned. */
export interface LazyRange {
  start: bigint;
  end: bigint;
}

/**
 * The lazy ranges of a task: its PE_LAZY entries within its lazily restorable areas, in address
 * order, entries that follow each other inside one area joined into one range (a dump's page
 * pipes cut a 4 GiB area into ~4,600 entries: as many ranges cost the restore's plan and the
 * daemon's every lookup). `entries` in address order, as a PageReader has them: its columns
 * (walked in numbers, nothing made per entry) or entry objects. `rest` is told every piece of
 * an entry that is not lazy (its index, start and end address), in the same walk.
 */
export function lazyRanges(
  entries: readonly ReaderEntry[] | Pick<EntryColumns, 'count' | 'vaddr' | 'nrPages' | 'flags'>,
  vmas: readonly Pick<PlanVma, 'start' | 'end' | 'flags' | 'status'>[],
  rest?: (entry: number, start: number, end: number) => void,
): LazyRange[] {
  const c = Array.isArray(entries) ? columnsOf(entries as readonly ReaderEntry[]) : (entries as EntryColumns);
  const areas = vmas
    .filter((v) => vmaCanBeLazy(v as PlanVma))
    .map((v) => ({ start: Number(v.start), end: Number(v.end) }))
    .sort((x, y) => x.start - y.start);
  const out: { start: number; end: number }[] = [];
  // the first area that may meet the next entry, and the area of the last range
  let k = 0;
  let lastArea = -1;
  let prev = -1;
  for (let i = 0; i < c.count; i++) {
    const a = c.vaddr[i]!;
    const b = a + c.nrPages[i]! * PAGE_SIZE;
    if (!(c.flags[i]! & PE_LAZY)) {
      rest?.(i, a, b);
      continue;
    }
    if (a < prev) k = 0; // (not in address order after all: look from the first area again)
    prev = a;
    while (k < areas.length && areas[k]!.end <= a) k++;
    // (the parts of the entry outside every lazy area: not lazy, for `rest`)
    let at = a;
    for (let j = k; j < areas.length && areas[j]!.start < b; j++) {
      const v = areas[j]!;
      const s = v.start > a ? v.start : a;
      const t = v.end < b ? v.end : b;
      if (rest && s > at) rest(i, at, s);
      at = t;
      // each within one area: UFFDIO_COPY fills one area at a time
      const last = out[out.length - 1];
      if (last && lastArea === j && last.end === s) last.end = t;
      else out.push({ start: s, end: t });
      lastArea = j;
    }
    if (rest && at < b) rest(i, at, b);
  }
  return out.map((r) => ({ start: BigInt(r.start), end: BigInt(r.end) }));
}

function columnsOf(es: readonly ReaderEntry[]): Pick<EntryColumns, 'count' | 'vaddr' | 'nrPages' | 'flags'> {
  return { count: es.length, vaddr: Float64Array.from(es, (e) => Number(e.vaddr)), nrPages: Float64Array.from(es, (e) => e.nrPages), flags: Uint32Array.from(es, (e) => e.flags) };
}

/**
 * `dump --lazy-pages`: where the lazy pages are, served to the lazy-pages daemon by the page
 * server (servePageServer's `lazySource`) from the memory of the tasks themselves, which stay
 * frozen until the daemon has them all (as CRIU serves them from the page pipes that still
 * reference the frozen tasks' pages). Only the ranges are kept here: the dump's memory use does
 * not grow with the checkpoint. A page is read from /proc/PID/mem when it is asked for.
 */
export class FrozenLazyPages implements LazyPageSource {
  /** per task id (the pid in the images): the real pid, its ranges in address order, its /proc/PID/mem once opened */
  private readonly tasks = new Map<bigint, { pid: number; ranges: { vaddr: bigint; end: bigint }[]; mem?: ProcMemPageSource }>();
  /** pages left lazy */
  pages = 0;
  /** pages sent so far (a page asked for twice counts twice) */
  served = 0;

  /** Pages [vaddr, vaddr + nrPages pages) of task id (real pid `pid`, frozen) are lazy. */
  add(id: number | bigint, pid: number, vaddr: bigint, nrPages: number): void {
    const k = BigInt(id);
    let t = this.tasks.get(k);
    if (!t) this.tasks.set(k, (t = { pid, ranges: [] }));
    t.ranges.push({ vaddr, end: vaddr + BigInt(nrPages) * PAGE });
    t.ranges.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
    this.pages += nrPages;
  }

  /** How many pages from vaddr (at most want) are lazy in one range; 0: none there. */
  run(id: bigint, vaddr: bigint, want: bigint): number {
    if (vaddr % PAGE !== 0n) return 0;
    const r = this.tasks.get(id)?.ranges.find((x) => x.vaddr <= vaddr && vaddr < x.end);
    if (!r) return 0;
    const left = (r.end - vaddr) / PAGE;
    return Number(want < left ? want : left);
  }

  /** Read the pages at vaddr into dest from the frozen task (run() said they are lazy). */
  async read(id: bigint, vaddr: bigint, dest: Buffer): Promise<void> {
    const t = this.tasks.get(id)!;
    t.mem ??= procMemPageSource(t.pid);
    await t.mem.read([{ vaddr, nrPages: dest.length / PAGE_SIZE }], dest);
    this.served += dest.length / PAGE_SIZE;
  }

  /** Let go of the tasks' memory (opened again when asked for more). */
  close(): void {
    for (const t of this.tasks.values()) {
      t.mem?.close();
      delete t.mem;
    }
  }
}
