/**
 * A monotonic clock in milliseconds, for the phase timings of dump and restore. (The global
 * `performance` loads node:perf_hooks and ten modules behind it on first use, a cost every
 * `criu dump` and `criu restore` paid for a few subtractions.)
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
