/** `crit x DIR rss`: which pages of each area the dump holds. */
import { hex, PAGE_SHIFT } from './shared.js';
import { ImageDir, big, num, type CritEntry } from '../image-dir.js';
import { VMA_FILE_PRIVATE, VMA_FILE_SHARED } from '../_images.js';

export interface RssVma {
  start: bigint;
  pages: bigint;
  file?: string;
  /** The same VMA as on the previous line (crit prints "~"). */
  continued: boolean;
}
export interface RssRow {
  vaddr: bigint;
  nr_pages: bigint;
  vmas: RssVma[];
}
export interface TaskRss {
  pid: number;
  entries: RssRow[];
}

/** Pages of a pagemap entry: nr_pages (u64, CRIU ≥ 3.x) or the old 32-bit field. */
export function entryPages(pm: CritEntry): bigint {
  return pm.nr_pages !== undefined ? big(pm.nr_pages) : big(pm.compat_nr_pages);
}

export async function collectRss(d: ImageDir): Promise<TaskRss[]> {
  const out: TaskRss[] = [];
  for (const t of await d.liveTasks()) {
    const mm = await d.first(`mm-${t.pid}.img`);
    const vmas = (mm.vmas as CritEntry[] | undefined) ?? [];
    const pms = (await d.load(`pagemap-${t.pid}.img`)).entries;
    const entries: RssRow[] = [];
    // walk pagemap entries and VMAs together, as crit's explore_rss does
    let vmi = 0;
    let pvmi = -1;
    for (const pm of pms.slice(1)) {
      const vaddr = big(pm.vaddr);
      const nr = entryPages(pm);
      while (vmi < vmas.length && big(vmas[vmi]!.end) <= vaddr) vmi++;
      const pme = vaddr + (nr << PAGE_SHIFT);
      const row: RssRow = { vaddr, nr_pages: nr, vmas: [] };
      while (vmi < vmas.length && big(vmas[vmi]!.start) < pme) {
        const vma = vmas[vmi]!;
        if (vmi === pvmi) row.vmas.push({ start: big(vma.start), pages: (big(vma.end) - big(vma.start)) >> PAGE_SHIFT, continued: true });
        else {
          const r: RssVma = { start: big(vma.start), pages: (big(vma.end) - big(vma.start)) >> PAGE_SHIFT, continued: false };
          if (num(vma.status) & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) r.file = await d.fileName('REG', num(vma.shmid), true);
          row.vmas.push(r);
          pvmi = vmi;
        }
        vmi++;
      }
      vmi--;
      if (vmi < 0) vmi = 0;
      entries.push(row);
    }
    out.push({ pid: t.pid, entries });
  }
  return out;
}

export function renderRss(rows: TaskRss[]): string {
  let s = '';
  for (const t of rows) {
    s += `${t.pid}\n`;
    for (const e of t.entries) {
      const pstr = `\t${hex(e.vaddr)} / ${String(e.nr_pages).padEnd(8)}`;
      let vstr = '';
      for (const v of e.vmas) {
        if (v.continued) vstr += ' ~';
        else {
          vstr += ` ${hex(v.start).padStart(8, '0')} / ${String(v.pages).padEnd(8)}`;
          if (v.file !== undefined) vstr += ' ' + v.file;
        }
        vstr += '\n\t' + ' '.repeat(23);
      }
      s += pstr.padEnd(24) + vstr + '\n';
    }
  }
  return s;
}
