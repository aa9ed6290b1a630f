/**
 * Copy-on-write sharing between a parent and its children, kept across a restore.
 *
 * After fork() a parent and its child share every page of their private areas until one of them
 * writes it. The images cannot say which pages were one physical page (each task's pages are
 * written in full, as CRIU does); the restore makes the sharing again the way a fork made it:
 * every task maps and fills its areas before it forks its children, a child keeps the areas of
 * its parent that match one of its own (`inherits`), and in them writes only the pages whose
 * content differs from its parent's (`compare` runs), and drops the parent's pages its own image
 * does not have (`drops`). Pages the children share among themselves but not with their parent
 * (the parent wrote its page after forking them) are made the way they came about: before it
 * forks a child, the parent lays that child's content over its own page where the next child has
 * the same content (`compare` LAY), and once its children are forked it puts its own pages back
 * (`refill` runs, `lateDrops`). The content comparison can share more than was shared at dump
 * time (two pages the tasks had written apart to the same content become one again), never
 * less: a page two tasks shared is in both images with the same content.
 */
import { firstEndingAfter, PAGE_SIZE_BIGINT, type Span } from '@crtools/common';
import type { RestorePlan, TaskPlan, VmaPlan } from './plan.js';
import { byAddress, endingAfterCursor, runSpans, spanAt, spansMeeting } from './areas.js';

const PAGE = PAGE_SIZE_BIGINT;
const PROT_WRITE = 2;
/** mmap flags of areas a child does not take over from its parent */
const MAP_LOCKED = 0x2000;
const MAP_HUGETLB = 0x40000;
/** madvise advice whose area fork() does not hand over as it is */
const MADV_DONTFORK = 10n;
const MADV_WIPEONFORK = 18n;

/** `compare` per run: COMPARE, laid over the parent's pages (write what differs); LAY, and the parent's area is writable */
export const COMPARE = 1;
export const LAY = 3;
/** the bits of COMPARE and LAY */
const COW_MASK = 3;
/**
 * `compare` bit of a run on huge pages (MAP_HUGETLB), whatever the rest: a page written over is
 * not dropped first (which would take the whole huge page), its huge page copied by the write
 */
export const HUGE = 4;

export interface CowTask {
  /** per area of the task: the index of the parent's area it takes over, or -1 (mapped anew) */
  inherits: number[];
  /** per page run: 0, COMPARE or LAY */
  compare: number[];
  /** page ranges of the parent's image in areas taken over that the task's own image lacks */
  drops: { start: bigint; end: bigint }[];
  /** per page run: where the task may have laid a child's pages, to compare and write again after forking */
  refill: boolean[];
  /** where the task may have laid a child's pages that its own image lacks: dropped after forking */
  lateDrops: { start: bigint; end: bigint }[];
}

/** For each area of task t: whether the restorer puts something into it (page runs, single-word patches). */
export function writtenAreas(t: TaskPlan): boolean[] {
  const { sorted, place } = byAddress(t.vmas);
  const written = t.vmas.map(() => false);
  const mark = (from: number, end: bigint) => {
    for (let k = from; k < sorted.length && sorted[k]!.start < end; k++) written[place[k]!] = true;
  };
  // (runs in address order, as the images have them: the areas met found by a cursor)
  const after = endingAfterCursor(sorted);
  for (const r of t.pages) mark(after(r.vaddr), r.vaddr + r.npages * PAGE);
  for (const p of t.patches ?? []) mark(firstEndingAfter(sorted, p.addr), p.addr + 8n);
  // (the daemon's pages, a lazy restore's: mapped as they were when they were runs the blob
  // skipped. The ranges are in address order, each inside one area (lazyRanges), most of them
  // in the area of the one before (a sparse area is a range per page): no search for those)
  let last = -1;
  for (const r of t.lazyRanges ?? []) {
    if (last >= 0 && sorted[last]!.start <= r.start && r.end <= sorted[last]!.end) continue;
    for (const k of spansMeeting(sorted, r.start, r.end)) {
      written[place[k]!] = true;
      last = k;
    }
  }
  return written;
}

const protsCache = new WeakMap<TaskPlan, number[]>();

/**
 * The protection an area is mapped with while the restorer fills it (as encode writes map_prot).
 * (Computed once per task object: the copy-on-write layout asks it of a task and of its
 * parent, the encoder of each task. A plan's tasks are not changed once built.)
 */
export function mapProts(t: TaskPlan): number[] {
  let prots = protsCache.get(t);
  if (!prots) {
    const written = writtenAreas(t);
    prots = t.vmas.map((v, k) => (v.kind !== 'file-shared' && written[k] ? v.prot | PROT_WRITE : v.prot));
    protsCache.set(t, prots);
  }
  return prots;
}

const cache = new WeakMap<RestorePlan, CowTask[]>();

/** The copy-on-write layout of every task of the plan (computed once per plan object). */
export function cowLayout(plan: RestorePlan): CowTask[] {
  let l = cache.get(plan);
  if (!l) {
    const tasks = plan.tasks.map((t) => cowTask(plan, t));
    // what each parent may lay for its children, and so must put back after forking them
    plan.tasks.forEach((p, pi) => {
      const areas = new Set<number>();
      const spans: [bigint, bigint][] = [];
      plan.tasks.forEach((t, ci) => {
        if (t.parent !== pi) return;
        t.pages.forEach((r, k) => {
          if ((tasks[ci]!.compare[k]! & COW_MASK) !== LAY) return;
          // (a run is LAY only in a child whose areas cowTask found sorted)
          const j = spanAt(t.vmas, r.vaddr);
          areas.add(tasks[ci]!.inherits[j]!);
          spans.push([r.vaddr, r.vaddr + r.npages * PAGE]);
        });
      });
      if (!areas.size) return;
      const me = tasks[pi]!;
      // (and the parent's areas were found sorted too)
      me.refill = p.pages.map((r) => areas.has(spanAt(p.vmas, r.vaddr)));
      const own: [bigint, bigint][] = p.pages.map((r) => [r.vaddr, r.vaddr + r.npages * PAGE]);
      me.lateDrops = subtract(union(spans), union(own));
    });
    l = tasks;
    cache.set(plan, l);
  }
  return l;
}

/** sorted, overlapping or adjacent ranges joined */
function union(spans: [bigint, bigint][]): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const [a, b] of [...spans].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = b > last[1] ? b : last[1];
    else out.push([a, b]);
  }
  return out;
}

function sorted(vmas: readonly VmaPlan[]): boolean {
  return vmas.every((v, i) => i === 0 || vmas[i - 1]!.end <= v.start);
}

function cowTask(plan: RestorePlan, t: TaskPlan): CowTask {
  // (a search per run only when the task has huge-page areas at all)
  const anyHuge = t.vmas.some((v) => v.flags & MAP_HUGETLB);
  const huge = t.pages.map((r) => {
    if (!anyHuge) return 0;
    const k = spanAt(t.vmas, r.vaddr);
    return k >= 0 && t.vmas[k]!.flags & MAP_HUGETLB ? HUGE : 0;
  });
  const none: CowTask = { inherits: t.vmas.map(() => -1), compare: huge, drops: [], refill: t.pages.map(() => false), lateDrops: [] };
  // a task a helper forks starts from its host's address space as the host restored it, before
  // the host lays anything for its own children: it compares, nothing is laid for it (a zombie
  // host restores none: it has its parent's, forked before that one lays anything)
  const via = t.viaHelper !== undefined;
  let pi = t.parent;
  while (via && pi >= 0 && plan.tasks[pi]!.zombie) pi = plan.tasks[pi]!.parent;
  const p = pi >= 0 ? plan.tasks[pi] : undefined;
  // as the kernel only ever makes such pairs by fork: the same program, both alive
  // (a lazy restore: the registration with userfaultfd does not survive the blob's fork)
  if (!p || plan.lazy || t.zombie || p.zombie || t.exe !== p.exe || t.exeGhost !== p.exeGhost) return none;
  // (the blob looks runs up by address)
  const runsSorted = (x: TaskPlan): boolean => x.pages.every((r, i) => i === 0 || x.pages[i - 1]!.vaddr + x.pages[i - 1]!.npages * PAGE <= r.vaddr);
  if (!sorted(t.vmas) || !sorted(p.vmas) || !runsSorted(t) || !runsSorted(p)) return none;
  const mine = mapProts(t);
  const theirs = mapProts(p);
  const byStart = new Map(p.vmas.map((v, i) => [v.start, i]));
  const inherits = t.vmas.map((v, k) => {
    const i = byStart.get(v.start);
    if (i === undefined) return -1;
    const pv = p.vmas[i]!;
    if (!sameArea(v, pv)) return -1;
    // the parent's area was writable once (accounted for good), this task's never was
    if (theirs[i]! & PROT_WRITE && !(mine[k]! & PROT_WRITE)) return -1;
    return i;
  });
  if (inherits.every((i) => i < 0)) return none;
  const taken = t.vmas.filter((_, k) => inherits[k]! >= 0);
  const compare = t.pages.map((r, i) => {
    const k = spanAt(t.vmas, r.vaddr);
    if (k < 0 || inherits[k]! < 0) return huge[i]!;
    // private huge pages the dump did not find shared with another task (cowHuge) were the
    // task's own: written whole (each huge page copied), never shared by equal content, which
    // would leave the child a page to copy (and maybe none free) at its next write
    if (huge[i] && !t.vmas[k]!.cowHuge) return huge[i]!;
    return (theirs[inherits[k]!]! & PROT_WRITE && !via ? LAY : COMPARE) | huge[i]!;
  });
  const drops: { start: bigint; end: bigint }[] = [];
  const theirRuns = runSpans(p.pages, PAGE);
  const myRuns = runSpans(t.pages, PAGE);
  for (const v of taken) {
    const have = spansIn(theirRuns, v);
    const keep = spansIn(myRuns, v);
    drops.push(...subtract(have, keep));
  }
  return { inherits, compare, drops, refill: t.pages.map(() => false), lateDrops: [] };
}

/** Two areas a fork leaves as one: same range, both private, same kind, flags, offset, advice and file. */
function sameArea(v: VmaPlan, pv: VmaPlan): boolean {
  if (v.end !== pv.end || v.kind !== pv.kind || (v.kind !== 'anon' && v.kind !== 'file-private') || v.aio || pv.aio) return false;
  if (v.flags !== pv.flags || v.flags & MAP_LOCKED || v.pgoff !== pv.pgoff) return false;
  const madv = v.madv ?? 0n;
  if (madv !== (pv.madv ?? 0n) || (madv >> MADV_DONTFORK) & 1n || (madv >> MADV_WIPEONFORK) & 1n) return false;
  return v.path === pv.path && v.ghost === pv.ghost && v.shmem === pv.shmem && (v.openFlags ?? 0) === (pv.openFlags ?? 0);
}

/** A task's page runs (`runs`, sorted and disjoint) within area v, as sorted [start, end) ranges. */
function spansIn(runs: readonly Span[], v: VmaPlan): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const k of spansMeeting(runs, v.start, v.end)) {
    const r = runs[k]!;
    out.push([r.start > v.start ? r.start : v.start, r.end < v.end ? r.end : v.end]);
  }
  return out;
}

/** have − keep, as ranges (both sorted). */
function subtract(have: [bigint, bigint][], keep: [bigint, bigint][]): { start: bigint; end: bigint }[] {
  const out: { start: bigint; end: bigint }[] = [];
  let from = 0; // keep's ranges ending before the current one of have end before every later one
  for (const [a0, b] of have) {
    let a = a0;
    while (from < keep.length && keep[from]![1] <= a) from++;
    for (let i = from; i < keep.length && keep[i]![0] < b; i++) {
      const [c, d] = keep[i]!;
      if (d <= a) continue;
      if (c > a) out.push({ start: a, end: c });
      a = d > a ? d : a;
      if (a >= b) break;
    }
    if (a < b) out.push({ start: a, end: b });
  }
  // adjacent ranges joined: one madvise each
  const joined: { start: bigint; end: bigint }[] = [];
  for (const r of out) {
    const last = joined[joined.length - 1];
    if (last && last.end === r.start) last.end = r.end;
    else joined.push({ start: r.start, end: r.end });
  }
  return joined;
}
