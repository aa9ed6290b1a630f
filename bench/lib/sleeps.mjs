// What the benchmarks of a `sleep` share (bench/rpc.mjs, bench/small.mjs): starting one that is
// not our child, killing it and awaiting its pid free, by pid (a tree of them: treeOf); medians;
// how to run a criu.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
export const gone = (pid) => {
  for (let i = 0; i < 1000 && existsSync(`/proc/${pid}`); i++) sleepMs(5);
  if (existsSync(`/proc/${pid}`)) throw new Error(`pid ${pid} still taken`);
};
export const kill = (pid) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
};
/** a sleep that is not our child (orphaned to init at once), leading its own session */
export const startSleep = () => {
  const pid = Number(spawnSync('sh', ['-c', 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).stdout.trim());
  // (the pid is known before setsid has run and exec'd sleep)
  for (let i = 0; i < 1000; i++) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') return pid;
    } catch {
      /* not yet */
    }
    sleepMs(2);
  }
  throw new Error(`sleep ${pid} did not start`);
};
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** the command line running `bin` (a crtools .js entry through this node, or a CRIU binary) */
export const argv = (bin, args) => (bin.endsWith('.js') ? [process.execPath, [bin, ...args]] : [bin, args]);

/** pid and every process under it (/proc/PID/task/TID/children), to be killed one by one */
export const treeOf = (pid) => {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch { /* gone */ }
  return [pid, ...kids.flatMap(treeOf)];
};
