/** Block this thread for `ms` milliseconds (for the synchronous ptrace and /proc polling loops). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
