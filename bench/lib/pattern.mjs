// What the benchmarks of a pattern process share (bench/dump.mjs, bench/page-server.mjs): built
// from test/workloads/pattern.c into a tmpfs work directory, started (it leaves our tree and
// writes "ready pid=N"), asked for its own check of every word afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sleepMs } from './sleeps.mjs';

/** A pattern process of `mib` MiB, its work directory under /dev/shm named by `prefix`. */
export function startPattern(root, mib, prefix) {
  const work = mkdtempSync(`/dev/shm/${prefix}`);
  const bin = path.join(work, 'pattern');
  execFileSync('gcc', ['-O2', '-o', bin, path.join(root, 'test/workloads/pattern.c')]);
  const state = path.join(work, 'pattern.state');
  spawnSync(bin, [String(mib), state], { stdio: 'ignore' });
  let line = '';
  for (let i = 0; i < 6000 && !line.startsWith('ready'); i++) {
    sleepMs(10);
    try { line = readFileSync(state, 'utf8'); } catch { /* not yet */ }
  }
  const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
  if (!pid) throw new Error(`pattern did not start: ${line}`);
  /** SIGUSR1: the workload's verdict line ("check ok bad=0" when every word is intact). */
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
