// What the benchmarks of a workload process share (bench/dump.mjs, bench/page-server.mjs,
// bench/scale.mjs): built from a C source into a tmpfs work directory, started as `BIN ARGS...
// STATEFILE` (it leaves our tree and writes "ready pid=N"), asked for its own check afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sleepMs } from './sleeps.mjs';

/**
 * The workload built from `src` (a path under the repository `root`) with `args`, its work
 * directory under /dev/shm named by `prefix`; `verdict()` asks it for its check line (SIGUSR1).
 */
export function startWorkload(root, src, args, prefix, { gccArgs = [] } = {}) {
  const work = mkdtempSync(`/dev/shm/${prefix}`);
  const bin = path.join(work, path.basename(src, '.c'));
  execFileSync('gcc', ['-O2', '-o', bin, path.join(root, src), ...gccArgs]);
  const state = path.join(work, `${path.basename(bin)}.state`);
  spawnSync(bin, [...args.map(String), state], { stdio: 'ignore' });
  let line = '';
  for (let i = 0; i < 12000 && !line.startsWith('ready') && !line.startsWith('error'); i++) {
    sleepMs(10);
    try { line = readFileSync(state, 'utf8'); } catch { /* not yet */ }
  }
  const pid = Number(/ready pid=(\d+)/.exec(line)?.[1]);
  if (!pid) throw new Error(`${src} did not start: ${line}`);
  /** SIGUSR1: the workload's verdict line ("check ok ..." when it finds itself intact). */
  const verdict = () => {
    writeFileSync(state, '');
    process.kill(pid, 'SIGUSR1');
    let v = '';
    for (let i = 0; i < 6000 && !v.startsWith('check'); i++) {
      sleepMs(10);
      v = readFileSync(state, 'utf8').trim();
    }
    return v;
  };
  return { work, pid, verdict };
}

/** A pattern process of `mib` MiB (test/workloads/pattern.c), its work directory named by `prefix`. */
export const startPattern = (root, mib, prefix) => startWorkload(root, 'test/workloads/pattern.c', [mib], prefix);
