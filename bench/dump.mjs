#!/usr/bin/env node
// bench/dump.mjs [MiB=1024]: dump a pattern process of MiB MiB to tmpfs (/dev/shm) with
// `criu dump -R`, report wall time, the dumper's peak RSS (from its /proc status VmHWM,
// sampled by wait4's rusage) and verify the workload's pattern afterwards.
// No CRIU binary works here; the reference is CRIU's published 1.1–2.9 s for 1 GiB.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mib = Number(process.argv[2] ?? 1024);
const work = mkdtempSync('/dev/shm/crtools-bench-dump-');
const bin = path.join(work, 'pattern');
execFileSync('gcc', ['-O2', '-o', bin, path.join(root, 'test/workloads/pattern.c')]);
const state = path.join(work, 'pattern.state');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
spawnSync(bin, [String(mib), state], { stdio: 'ignore' });
let line = '';
for (let i = 0; i < 6000 && !line.startsWith('ready'); i++) {
  sleep(10);
  try { line = readFileSync(state, 'utf8'); } catch { /* not yet */ }
}
const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
if (!pid) throw new Error(`pattern did not start: ${line}`);
const images = path.join(work, 'img');
try {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [path.join(root, 'packages/cli/bin/criu.js'), 'dump', '-t', String(pid), '-D', images, '-R', '-o', 'dump.log'], { stdio: ['ignore', 'inherit', 'inherit'] });
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch { /* exited */ }
  }, 5);
  const code = await new Promise((res) => child.on('exit', (c) => res(c)));
  clearInterval(timer);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const pagesBytes = readdirSync(images).filter((f) => f.startsWith('pages-')).reduce((s, f) => s + statSync(path.join(images, f)).size, 0);
  writeFileSync(state, '');
  process.kill(pid, 'SIGUSR1');
  let verdict = '';
  for (let i = 0; i < 6000 && !verdict.startsWith('check'); i++) { sleep(10); verdict = readFileSync(state, 'utf8').trim(); }
  console.log(JSON.stringify({
    target_mib: mib, exit_code: code, wall_ms: Math.round(ms), pages_mib: +(pagesBytes / 1048576).toFixed(1),
    dumper_peak_rss_mib: +(peak / 1024).toFixed(1), throughput_mib_s: Math.round(pagesBytes / 1048576 / (ms / 1000)),
    workload_after: verdict, target: 'peak RSS <= 100 MiB, wall <= 0.5 x CRIU 1.1-2.9 s (no CRIU binary works here)',
  }));
} finally {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
}
