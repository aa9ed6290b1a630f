#!/usr/bin/env node
// Benchmark: kerndat cold (probing) vs cached, per-probe cost, and `criu check` wall time.
//   node bench/kerndat.mjs      (after `pnpm --filter @crtools/cli... build`)
// Env: KERNDAT_BENCH_RUNS (default 10).
// A CRIU that works on this kernel is not available: Debian's criu 3.17 is run once to show
// that it cannot even initialise its kerndat here, so there is no CRIU figure to compare with.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const kerndatBin = path.join(root, 'packages/kerndat/bin/kerndat.js');
const criuBin = path.join(root, 'packages/cli/bin/criu.js');
const RUNS = Number(process.env.KERNDAT_BENCH_RUNS ?? 10);

for (const f of ['packages/kerndat/dist/index.js', 'packages/kerndat/build/Release/kerndat.node', 'packages/cli/dist/criu-main.js']) {
  if (!existsSync(path.join(root, f))) {
    console.error(`build first: pnpm --filter @crtools/cli... build (missing ${f})`);
    process.exit(1);
  }
}
const dir = mkdtempSync(path.join(tmpdir(), 'kerndat-bench-'));
const env = { ...process.env, CRTOOLS_KERNDAT_CACHE: path.join(dir, 'kerndat.json') };

function wall(cmd) {
  const t = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', cmd], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0 && !cmd.includes('--all')) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout };
}
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s.at(-1) };
}
function row(name, xs) {
  const { min, median, max } = stats(xs);
  console.log(`${name.padEnd(44)} median ${median.toFixed(1).padStart(7)} ms   min ${min.toFixed(1).padStart(7)}   max ${max.toFixed(1).padStart(7)}`);
}
function repeat(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(fn());
  return out;
}

console.log(`kerndat bench: ${RUNS} runs each, node ${process.version}, kernel ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}`);
console.log('-- processes (wall time, includes node start-up)');
row('node -e "" (node start-up alone)', repeat(RUNS, () => wall(`node -e ""`).ms));
row('kerndat --no-cache (cold: every probe)', repeat(RUNS, () => wall(`node ${kerndatBin} --no-cache`).ms));
row('kerndat (cached)', repeat(RUNS, () => wall(`node ${kerndatBin}`).ms));
row('kerndat | criu check', repeat(RUNS, () => wall(`node ${kerndatBin} | node ${criuBin} check`).ms));
row('criu check (probes through the cache)', repeat(RUNS, () => wall(`node ${criuBin} check`).ms));
row('criu check --no-cache', repeat(RUNS, () => wall(`node ${criuBin} check --no-cache`).ms));
row('kerndat | criu check --all (exit 1 here)', repeat(RUNS, () => wall(`node ${kerndatBin} | node ${criuBin} check --all`).ms));

console.log('-- in process (library)');
const lib = await import(pathToFileURL(path.join(root, 'packages/kerndat/dist/index.js')).href);
lib.probeKerndat(); // warm up
row('probeKerndat() (all probes)', repeat(RUNS, () => {
  const t = performance.now();
  lib.probeKerndat();
  return performance.now() - t;
}));
const doc = lib.probeKerndat();
{
  const us = stats(repeat(RUNS, () => {
    const t = performance.now();
    for (let i = 0; i < 1000; i++) lib.judge(doc, { category: 'all' });
    return performance.now() - t; // ms per 1000 calls = µs per call
  }));
  console.log(`${'judge(doc, {category: "all"}) per call'.padEnd(44)} median ${us.median.toFixed(1).padStart(7)} µs  min ${us.min.toFixed(1).padStart(7)}   max ${us.max.toFixed(1).padStart(7)}`);
}
console.log('-- per probe (median of runs, in process), slowest first');
const per = lib.PROBES.map(([name]) => [name, stats(repeat(RUNS, () => {
  const t = performance.now();
  lib.probeKerndat({ only: [name] });
  return performance.now() - t;
})).median]);
per.sort((a, b) => b[1] - a[1]);
for (const [name, ms] of per.slice(0, 12)) console.log(`  ${name.padEnd(22)} ${ms.toFixed(2)} ms`);
console.log(`  (${per.length - 12} more, each under ${per[12][1].toFixed(2)} ms)`);

console.log('-- CRIU');
const criu = spawnSync('criu', ['check'], { encoding: 'utf8', timeout: 20000 });
if (criu.error) console.log('no criu binary installed: no CRIU figure');
else {
  const v = spawnSync('criu', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  console.log(`criu ${v.replace('Version: ', '')} cannot run 'criu check' on this kernel (exit ${criu.status}):`);
  for (const l of criu.stderr.trim().split('\n').filter((l) => /vdso|kerndat/.test(l)).slice(0, 2)) console.log('  ' + l);
  console.log('so there is no working CRIU to time here; no CRIU figure is reported.');
}
console.log(`guard gap on this kernel: stack_guard_gap=${doc.stack_guard_gap} stack_guard_gap_hidden=${doc.stack_guard_gap_hidden}`);
rmSync(dir, { recursive: true, force: true });
