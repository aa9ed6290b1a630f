#!/usr/bin/env node
// bench/dump.mjs [MiB=1024]: dump a pattern process of MiB MiB to tmpfs (/dev/shm) with
// `criu dump -R`, once per page method (splice = parasite vmsplice + splice, the default;
// read = process_vm_readv), report wall time, the dumper's CPU time and peak RSS (VmHWM
// sampled from /proc) and verify the workload's pattern afterwards. 'splice' streams (the tracee's
// vmsplice and our splice at once, one parasite command per 512 runs); 'splice-batch' is splice
// with CRTOOLS_DUMP_STREAM=0 (one pipe-full per command, moved after it).
// ROUNDS=N repeats the splice/splice-batch pair N times, interleaved (same load for both).
// With CRIU=/path/to/criu (4.x) each round also has CRIU's `criu dump -R` of the same process
// ('criu'), and every round the machine's floor (bench/floor.c: MiB MiB of a process's own
// memory moved into tmpfs files with vmsplice and splice and nothing else; 'floor-one-file' is
// the copy a dump of one task pays, 'floor-one-file-2' the same file written by two threads,
// 'floor-two-files' two threads with a file each).
// BEFORE_CRIU=<criu entry .js> adds another build of crtools to each round ('before', splice).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPattern } from './lib/pattern.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mib = Number(process.argv[2] ?? 1024);
const { work, pid, verdict: askVerdict } = startPattern(root, mib, 'crtools-bench-dump-');
const images = path.join(work, 'img');
try {
  const rounds = Number(process.env.ROUNDS ?? 1);
  const criu = process.env.CRIU;
  // one unreported dump by each tool first: the first pass over freshly written memory into new
  // tmpfs pages costs up to twice the next ones on these machines, and CRIU's first run probes
  // its kerndat
  const methods = ['warm-splice', ...(criu ? ['warm-criu'] : []), ...Array.from({ length: rounds }, () => ['splice', 'splice-batch', ...(process.env.BEFORE_CRIU ? ['before'] : []), ...(criu ? ['criu'] : []), 'floor']).flat(), 'read'];
  const floorBin = path.join(work, 'floor');
  execFileSync('gcc', ['-O2', '-o', floorBin, path.join(root, 'bench/floor.c'), '-pthread']);
  for (const entry of methods) {
  const warm = entry.startsWith('warm-');
  const method = warm ? entry.slice(5) : entry;
  rmSync(images, { recursive: true, force: true });
  if (method === 'floor') {
    mkdirSync(images, { recursive: true });
    for (const l of execFileSync(floorBin, [String(mib), images], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      const f = JSON.parse(l);
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      console.log(JSON.stringify({ method: f.method, target_mib: mib, wall_ms: f.wall_ms, cpu_ms: f.cpu_ms, throughput_mib_s: Math.round(mib / (f.wall_ms / 1000)), loadavg_1min: Number(load) }));
    }
    continue;
  }
  const t0 = process.hrtime.bigint();
  const dumpArgs = ['dump', '-t', String(pid), '-D', images, '-R', '-o', 'dump.log'];
  const [cmd, args] =
    method === 'criu' ? [criu, [...dumpArgs, '--shell-job']]
    : [process.execPath, [method === 'before' ? process.env.BEFORE_CRIU : path.join(root, 'packages/cli/bin/criu.js'), ...dumpArgs]];
  mkdirSync(images, { recursive: true }); // (CRIU wants it there)
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CRTOOLS_DUMP_PAGES: method === 'read' ? 'read' : 'splice', CRTOOLS_DUMP_STREAM: method === 'splice-batch' ? '0' : '1' } });
  let peak = 0;
  let cpu = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      cpu = (Number(f[11]) + Number(f[12])) * 10; // utime + stime, ms at 100 Hz
    } catch { /* exited */ }
  }, 5);
  const code = await new Promise((res) => child.on('exit', (c) => res(c)));
  clearInterval(timer);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const pagesBytes = readdirSync(images).filter((f) => f.startsWith('pages-')).reduce((s, f) => s + statSync(path.join(images, f)).size, 0);
  const verdict = askVerdict();
  if (warm) continue;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.log(JSON.stringify({
    method, target_mib: mib, exit_code: code, wall_ms: Math.round(ms), dumper_cpu_ms_approx: cpu, pages_mib: +(pagesBytes / 1048576).toFixed(1),
    dumper_peak_rss_mib: +(peak / 1024).toFixed(1), throughput_mib_s: Math.round(pagesBytes / 1048576 / (ms / 1000)),
    workload_after: verdict, loadavg_1min: Number(load),
    target: 'peak RSS <= 100 MiB, wall <= 0.5 x CRIU (criu rows, same run)',
  }));
  }
} finally {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
}
