/**
 * `criu dedup`: after an incremental dump, the parent snapshots still hold copies of pages the
 * child wrote again. Punch those ranges out of the parents' pages images (the files keep their
 * size, so offsets stay valid) — criu/cr-dedup.c and dedup_one_iovec in criu/pagemap.c.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode, silentLogger, type Logger } from '@crtools/common';
import { PAGE_SIZE, PE_PARENT, PE_PRESENT } from './constants.js';
import { openPageReader, type PageReader } from './reader.js';

const PAGE = BigInt(PAGE_SIZE);

/** Deallocate `length` bytes at `offset` of `path`, keeping the file size. */
export type PunchHoleFn = (path: string, offset: number, length: number) => Promise<void>;

/**
 * Default hole puncher: util-linux fallocate(1) (`--punch-hole` keeps the size). Node has no
 * fallocate(2) binding and this package has no native code; adjacent ranges are merged by the
 * caller so the number of calls stays small.
 */
export const fallocatePunchHole: PunchHoleFn = async (path, offset, length) => {
  try {
    // (node:child_process loaded here only: a dump or restore never needs it)
    const { execFile } = process.getBuiltinModule('node:child_process');
    const run = process.getBuiltinModule('node:util').promisify(execFile);
    await run('fallocate', ['--punch-hole', '--offset', String(offset), '--length', String(length), path]);
  } catch (e) {
    const err = e as { stderr?: string; code?: string | number };
    throw new CrtoolsError('PAGEMAP_PUNCH_FAILED', `${path}: cannot punch ${length} bytes at ${offset}: ${String(err.stderr ?? err.code ?? e).trim()}`, {
      exitCode: ExitCode.FAILED,
      context: { path, offset },
      cause: e,
    });
  }
};

/** Collects ranges per file and merges adjacent ones before punching (CRIU's "bunch"). */
class Puncher {
  private pending = new Map<string, { off: number; len: number }>();
  bytes = 0;
  constructor(private readonly punch: PunchHoleFn) {}
  async add(path: string, off: number, len: number): Promise<void> {
    const p = this.pending.get(path);
    if (p && p.off + p.len === off) {
      p.len += len;
      return;
    }
    if (p) await this.doPunch(path, p.off, p.len);
    this.pending.set(path, { off, len });
  }
  private async doPunch(path: string, off: number, len: number) {
    await this.punch(path, off, len);
    this.bytes += len;
  }
  async flush(): Promise<void> {
    for (const [path, p] of this.pending) await this.doPunch(path, p.off, p.len);
    this.pending.clear();
  }
}

async function dedupInto(p: Puncher, parent: PageReader, vaddr: bigint, nrPages: number): Promise<void> {
  const end = vaddr + BigInt(nrPages) * PAGE;
  const list = parent.entries;
  // first entry that ends after vaddr
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].vaddr + BigInt(list[mid].nrPages) * PAGE <= vaddr) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < list.length; i++) {
    const e = list[i];
    const eEnd = e.vaddr + BigInt(e.nrPages) * PAGE;
    if (eEnd <= vaddr) continue;
    if (e.vaddr >= end) break;
    const from = e.vaddr > vaddr ? e.vaddr : vaddr;
    const to = eEnd < end ? eEnd : end;
    const n = Number((to - from) / PAGE);
    if (e.flags & PE_PRESENT) {
      await p.add(parent.pagesPath, e.offset + Number((from - e.vaddr) / PAGE) * PAGE_SIZE, n * PAGE_SIZE);
    }
    // Older ancestors may hold the same pages too (under a PE_PARENT entry or overridden).
    if (parent.parent) await dedupInto(p, parent.parent, from, n);
  }
}

/**
 * Punch, in `parent` and its ancestors, the data of the pages `[vaddr, vaddr + nrPages)`.
 * Used by the dump's --auto-dedup. Returns the bytes punched.
 */
export async function dedupRange(parent: PageReader, vaddr: bigint, nrPages: number, punch: PunchHoleFn = fallocatePunchHole): Promise<number> {
  const p = new Puncher(punch);
  await dedupInto(p, parent, vaddr, nrPages);
  await p.flush();
  return p.bytes;
}

/**
 * Punch the given byte ranges of pages images (restore's --auto-dedup: what was read back is
 * deallocated), adjacent ranges of a file merged. Returns the bytes punched.
 */
export async function punchRanges(ranges: readonly { path: string; offset: number; length: number }[], punch: PunchHoleFn = fallocatePunchHole): Promise<number> {
  const p = new Puncher(punch);
  const sorted = [...ranges].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.offset - b.offset));
  for (const r of sorted) if (r.length > 0) await p.add(r.path, r.offset, r.length);
  await p.flush();
  return p.bytes;
}

export interface DedupOptions {
  /** The images directory of the newest dump (its `parent` link leads to the older ones). */
  dir: string;
  punchHole?: PunchHoleFn;
  logger?: Logger;
}

export interface DedupResult {
  pagemaps: number;
  bytesPunched: number;
}

/** `criu dedup`: for every pagemap of `dir` that has a parent, punch what it overrides. */
export async function dedup(o: DedupOptions): Promise<DedupResult> {
  const log = o.logger ?? silentLogger;
  const punch = o.punchHole ?? fallocatePunchHole;
  let names: string[];
  try {
    names = readdirSync(join(o.dir, 'parent'));
  } catch (e) {
    throw new CrtoolsError('PAGEMAP_NO_PARENT', `${join(o.dir, 'parent')}: cannot read the previous snapshot (${(e as NodeJS.ErrnoException).code ?? e})`, {
      exitCode: ExitCode.FAILED,
      context: { path: join(o.dir, 'parent') },
    });
  }
  const result: DedupResult = { pagemaps: 0, bytesPunched: 0 };
  for (const name of names.sort()) {
    let m = /^pagemap-shmem-(\d+)\.img$/.exec(name);
    const kind = m ? 'shmem' : 'task';
    if (!m) m = /^pagemap-(\d+)\.img$/.exec(name);
    if (!m) continue;
    const id = BigInt(m[1]);
    // a task or object that is gone from the newest dump has nothing to override
    if (!existsSync(join(o.dir, name))) continue;
    const reader = await openPageReader({ dir: o.dir, id, kind });
    try {
      if (!reader.parent) continue;
      log.info(`dedup ${kind} ${id}`);
      const p = new Puncher(punch);
      for (const e of reader.entries) {
        if (e.flags & PE_PARENT) continue;
        await dedupInto(p, reader.parent, e.vaddr, e.nrPages);
      }
      await p.flush();
      result.pagemaps++;
      result.bytesPunched += p.bytes;
    } finally {
      reader.close();
    }
  }
  return result;
}
