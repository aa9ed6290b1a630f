/**
 * seccomp.img: every seccomp filter of the tree, in CRIU 4.2's layout. A thread's chain is
 * reached from its thread_core.seccomp_filter, the index of its oldest filter (installed
 * first); each filter's `prev` is the index of the filter installed after it, and the newest
 * has none. (CRIU names the link `prev` and writes each chain newest first; so do we, so a
 * tree with one chain gives the very image CRIU gives.)
 *
 * Chains are shared between threads and tasks (a thread or a child inherits its creator's
 * filters), but the kernel offers no kcmp for filters: two filters are the same when their
 * instructions, their flags and everything installed after them are equal. So identical
 * chains, and chains that end alike, are written once.
 */
import type { Entry } from '@crtools/files/dump';
import type { SeccompFilter } from '@crtools/parasite';

/** SECCOMP_FILTER_FLAG_TSYNC: installing it puts the filter on every thread of the process */
export const SECCOMP_FILTER_FLAG_TSYNC = 1;

export class SeccompChains {
  private readonly filters: Entry[] = [];
  private readonly known = new Map<string, number>();

  /** Record a chain (oldest first, not empty); the index of its oldest filter. */
  add(chain: readonly SeccompFilter[]): number {
    let after = -1;
    for (let i = chain.length - 1; i >= 0; i--) {
      const f = chain[i]!;
      const key = `${f.flags}/${after}/${f.filter.toString('base64')}`;
      let at = this.known.get(key);
      if (at === undefined) {
        at = this.filters.length;
        const e: Entry = { filter: Buffer.from(f.filter), flags: f.flags };
        if (after >= 0) e['prev'] = after;
        this.filters.push(e);
        this.known.set(key, at);
      }
      after = at;
    }
    return after;
  }

  /** The one entry of seccomp.img (an empty list when nothing has filters). */
  entry(): Entry {
    return { seccomp_filters: this.filters };
  }
}

/** Two chains with the same instructions, filter by filter (flags aside). */
export function sameChain(a: readonly SeccompFilter[], b: readonly SeccompFilter[]): boolean {
  return a.length === b.length && a.every((f, i) => f.filter.equals(b[i]!.filter));
}
