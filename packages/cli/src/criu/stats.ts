import type { DumpStats } from '@crtools/dump';
import type { RestoreStats } from '@crtools/restorer';

/** A page count as CRIU's --display-stats prints it: decimal, then hex in parentheses. */
const count = (n: bigint): string => `${n} (0x${n.toString(16)})`;

/** What `criu dump --display-stats` prints on stdout (CRIU's lines). */
export function dumpStatsText(s: DumpStats): string {
  return [
    'Displaying dump stats:',
    `Freezing time: ${s.freezing_time} us`,
    `Frozen time: ${s.frozen_time} us`,
    `Memory dump time: ${s.memdump_time} us`,
    `Memory write time: ${s.memwrite_time} us`,
    `IRMAP resolve time: ${s.irmap_resolve} us`,
    `Memory pages scanned: ${count(s.pages_scanned)}`,
    `Memory pages skipped from parent: ${count(s.pages_skipped_parent)}`,
    `Memory pages written: ${count(s.pages_written)}`,
    `Lazy memory pages: ${count(s.pages_lazy)}`,
  ].join('\n') + '\n';
}

/** What `criu restore --display-stats` prints on stdout (CRIU's lines). */
export function restoreStatsText(s: RestoreStats): string {
  return [
    'Displaying restore stats:',
    `Pages compared: ${count(s.pages_compared)}`,
    `Pages skipped COW: ${count(s.pages_skipped_cow)}`,
    `Pages restored: ${count(s.pages_restored)}`,
    `Restore time: ${s.restore_time} us`,
    `Forking time: ${s.forking_time} us`,
  ].join('\n') + '\n';
}
