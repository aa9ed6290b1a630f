#!/usr/bin/env node
// Benchmark: frozen time of the final dump of a workload that keeps writing, after 2 pre-dumps
// (uffd-wp + PAGEMAP_SCAN tracking: only pages written since are dumped), against a full dump
// of the same workload (stats-dump frozen_time).
//   node bench/predump.mjs          (after `pnpm turbo run build --filter=@crtools/cli...`; root)
// Env: PREDUMP_BENCH_MIB (default 1024), PREDUMP_BENCH_RATE (MiB/s the workload dirties, default 50),
// PREDUMP_BENCH_KEEP=1 (keep the images and logs).
// CRIU 4.2 cannot pre-dump on a kernel without soft-dirty: no CRIU column.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const criuBin = path.join(root, 'packages/cli/bin/criu.js');
const critBin = path.join(root, 'packages/cli/bin/crit.js');
const MIB = Number(process.env.PREDUMP_BENCH_MIB ?? 1024);
const RATE = Number(process.env.PREDUMP_BENCH_RATE ?? 50);
const work = mkdtempSync(path.join(tmpdir(), 'crtools-bench-predump-'));
const bin = path.join(work, 'dirtier');
execFileSync('gcc', ['-O2', '-o', bin, path.join(root, 'test/workloads/dirtier.c')]);

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
// each criu run's CPU times (user + system, from /usr/bin/time) beside the wall times: the box is shared
const cpu = {};
const criu = (args, name) => {
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, criuBin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`criu ${args.join(' ')}: ${r.stderr.trim()}`);
  const m = r.stderr.match(/cpu ([\d.]+) ([\d.]+)\s*$/);
  if (name && m) cpu[name] = `${m[1]} s user, ${m[2]} s sys`;
};
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const loads = [load()];
const stats = (dir) => JSON.parse(spawnSync(process.execPath, [critBin, 'decode', '-i', path.join(dir, 'stats-dump')], { encoding: 'utf8' }).stdout).entries[0].dump;

// the workloads started (each killed by its pid at the end, whatever happened)
const started = [];
function start(name) {
  const state = path.join(work, `${name}.state`);
  execFileSync(bin, [String(MIB), String(RATE), '0', state]);
  for (let i = 0; i < 3000 && !(existsSync(state) && /ready/.test(readFileSync(state, 'utf8'))); i++) sleep(10);
  const pid = Number(readFileSync(state, 'utf8').match(/pid=(\d+)/)[1]);
  started.push(pid);
  return { pid, state };
}
function verdict(w) {
  process.kill(w.pid, 'SIGUSR1');
  for (let i = 0; i < 3000; i++) {
    sleep(10);
    const s = readFileSync(w.state, 'utf8');
    if (s.startsWith('check')) return s.trim();
  }
  return 'no verdict';
}
function gone(pid) {
  for (let i = 0; i < 500 && existsSync(`/proc/${pid}`); i++) sleep(10);
}

const rows = [];
try {
  // full dump
  const a = start('full');
  sleep(1000);
  criu(['dump', '-t', String(a.pid), '-D', path.join(work, 'full'), '-o', 'dump.log', '-v4'], 'full dump');
  loads.push(load());
  gone(a.pid);
  const full = stats(path.join(work, 'full'));
  rows.push(['full dump', full]);
  // 2 pre-dumps, 1 s apart while it writes, then the final dump
  const b = start('inc');
  sleep(1000);
  criu(['pre-dump', '-t', String(b.pid), '-D', path.join(work, 'p1')], 'pre-dump 1');
  rows.push(['pre-dump 1', stats(path.join(work, 'p1'))]);
  sleep(1000);
  criu(['pre-dump', '-t', String(b.pid), '-D', path.join(work, 'p2'), '--prev-images-dir', '../p1'], 'pre-dump 2');
  rows.push(['pre-dump 2', stats(path.join(work, 'p2'))]);
  sleep(1000);
  criu(['dump', '-t', String(b.pid), '-D', path.join(work, 'final'), '--prev-images-dir', '../p2', '--track-mem', '-o', 'dump.log', '-v4'], 'final dump after 2 pre-dumps');
  loads.push(load());
  gone(b.pid);
  const fin = stats(path.join(work, 'final'));
  rows.push(['final dump after 2 pre-dumps', fin]);
  criu(['restore', '-D', path.join(work, 'final'), '-d']);
  const v = verdict(b);
  process.kill(b.pid, 'SIGKILL');
  console.log(`workload: ${MIB} MiB, dirtying ${RATE} MiB/s; restored chain's verdict: ${v}`);
  console.log(`load average (1/5/15 min) at the start, after the full dump, after the final dump: ${loads.join(' | ')}`);
  console.log('| run | frozen_time ms | memwrite_time ms | pages written | pages skipped (parent) | criu CPU (whole run) |');
  console.log('|---|---|---|---|---|---|');
  for (const [n, s] of rows) console.log(`| ${n} | ${(Number(s.frozen_time) / 1000).toFixed(1)} | ${(Number(s.memwrite_time) / 1000).toFixed(1)} | ${s.pages_written} | ${s.pages_skipped_parent} | ${cpu[n] ?? '?'} |`);
  // where the frozen time went (the dump log's level-4 lines)
  for (const d of ['full', 'final']) {
    for (const l of readFileSync(path.join(work, d, 'dump.log'), 'utf8').split('\n')) if (/frozen time of|^\S+\s+Frozen |held pages written|pages prefilled|kill of the tree|Dumping finished/.test(l)) console.log(`${d}: ${l.replace(/^\([^)]*\)\s*/, '').trim()}`);
  }
  console.log(`final / full frozen time: ${(Number(fin.frozen_time) / Number(full.frozen_time)).toFixed(3)}x`);
} finally {
  for (const pid of started) {
    try {
      // (still our workload: not a pid used again since)
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(bin)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone (dumped and killed, or restored and killed above)
    }
  }
  // PREDUMP_BENCH_KEEP=1: the images and level-4 logs stay for a look
  if (process.env.PREDUMP_BENCH_KEEP === '1') console.log(`kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
