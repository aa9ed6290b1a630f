/**
 * Plan and write one task's memory in one call: the composition the dump uses.
 */
import { planDump, type DumpPlan, type PlanOptions } from './plan.js';
import { writePagemap, type PageSource, type WriteStats } from './writer.js';
import type { LocalSinkOptions } from './sink.js';

export interface DumpTaskPagesOptions extends PlanOptions, Omit<LocalSinkOptions, 'kind'> {
  source: PageSource;
  chunkBytes?: number;
}

export interface DumpTaskPagesResult {
  plan: DumpPlan;
  written: WriteStats & { pagemapPath: string; pagesPath: string };
}

/**
 * planDump + writePagemap for a task: writes `<dir>/pagemap-<id>.img` and
 * `<dir>/pages-<pagesId>.img`. `plan.sharedVmas` lists the shared anonymous VMAs whose pages
 * belong in pagemap-shmem images (planShmem).
 */
export async function dumpTaskPages(o: DumpTaskPagesOptions): Promise<DumpTaskPagesResult> {
  const plan = await planDump(o);
  const written = await writePagemap({ ...o, kind: 'task', entries: plan.entries });
  return { plan, written };
}
