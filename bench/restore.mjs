#!/usr/bin/env node
// bench/restore.mjs [MiB=1024] [runs=3]: checkpoint a pattern process of MiB MiB into tmpfs
// (/dev/shm) with `criu dump`, then time `criu restore -d` of it (process start to exit, the
// plan built from the images included), verify every word with the workload's own check, kill
// it by pid and repeat. Reference: CRIU 4.2 restores a 1 GiB pattern checkpoint in ~0.5 s here.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const criu = path.join(root, 'packages/cli/bin/criu.js');
const mib = Number(process.argv[2] ?? 1024);
const runs = Number(process.argv[3] ?? 3);
const work = mkdtempSync('/dev/shm/crtools-bench-restore-');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const bin = path.join(work, 'pattern');
execFileSync('gcc', ['-O2', '-o', bin, path.join(root, 'test/workloads/pattern.c')]);
const state = path.join(work, 'pattern.state');
const read = () => {
  try {
    return readFileSync(state, 'utf8').trim();
  } catch {
    return '';
  }
};
const waitFor = (pred, ms) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = read();
    if (pred(s)) return s;
    sleep(10);
  }
  return read();
};
const gone = (pid) => {
  for (let i = 0; i < 1000 && existsSync(`/proc/${pid}`); i++) sleep(10);
};

spawnSync(bin, [String(mib), state], { stdio: 'ignore' });
const pid = Number(/pid=(\d+)/.exec(waitFor((s) => s.startsWith('ready'), 120_000))?.[1]);
if (!pid) throw new Error('pattern did not start');
const images = path.join(work, 'img');
let code = 0;
try {
  const d = spawnSync(process.execPath, [criu, 'dump', '-t', String(pid), '-D', images, '-o', 'dump.log'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (d.status !== 0) throw new Error(`criu dump failed (${d.status})`);
  gone(pid);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(criu, ['restore', '-D', images, '-d'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`criu restore failed (${r.status})`);
    writeFileSync(state, '');
    process.kill(pid, 'SIGUSR1');
    const v = waitFor((x) => x.startsWith('check'), 60_000);
    process.kill(pid, 'SIGKILL');
    gone(pid);
    times.push(s);
    console.log(`run ${i + 1}: restore of ${mib} MiB in ${s.toFixed(3)} s, verdict: ${v}`);
    if (v !== 'check ok bad=0') code = 1;
  }
  const best = Math.min(...times);
  console.log(`restore ${mib} MiB: best ${best.toFixed(3)} s (${(mib / best).toFixed(0)} MiB/s), median ${times.sort()[Math.floor(times.length / 2)].toFixed(3)} s; CRIU 4.2: ~0.5 s for 1 GiB`);
} finally {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = code;
