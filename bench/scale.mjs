#!/usr/bin/env node
// bench/scale.mjs: the scale curves of issue 18, crtools against CRIU 4.x (CRIU=/path/to/criu) in
// the same run. For each point of each curve one workload is started, then in each run, in
// alternation, crtools and CRIU each dump it into tmpfs (/dev/shm, killing it) and restore it
// (`restore -d`): the next tool dumps the process the previous one restored. After every restore
// the workload checks itself (SIGUSR1: "check ok ..."). Each command runs under /usr/bin/time:
// wall time, CPU time (user + system) and peak RSS (%M: the dumper's or restorer's own, with the
// children it waited for). Medians over the runs; the load average beside every figure.
//
//   node bench/scale.mjs [--curves mem,tree,threads,maps] [--runs 3]
//                        [--mem 256,1024,4096,8192] [--tree 1,10,100,500]
//                        [--threads 1,100,1000] [--maps 100,10000,60000] [--md]
// mem: a pattern process of N MiB (test/workloads/pattern.c, every word checked after restore);
// tree, threads: bench/scale.c; maps: test/workloads/manymaps.c (N one-page areas, every word
// checked after restore). A mem point runs only when `free` shows room for the
// workload and its images twice (4 x N MiB available), a maps point only under vm.max_map_count;
// a point skipped says why. JSON Lines on stdout (one a measure), then the tables (--md: only them).
// BEFORE_CRIU=<criu entry .js of another build> adds that build to the alternation (a "before"
// column: the same workload dumped and restored by it in turn).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorkload } from './lib/pattern.mjs';
import { gone, kill, median, treeOf } from './lib/sleeps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ours = path.join(root, 'packages/cli/bin/criu.js');
const opts = { curves: 'mem,tree,threads,maps', runs: '3', mem: '256,1024,4096,8192', tree: '1,10,100,500', threads: '1,100,1000', maps: '100,10000,60000' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--md') opts.md = true;
  else if (a.startsWith('--') && a.slice(2) in opts) opts[a.slice(2)] = process.argv[++i];
  else {
    console.error(`bench/scale: unknown argument ${a}`);
    process.exit(2);
  }
}
const runs = Number(opts.runs);
const list = (s) => s.split(',').filter(Boolean).map(Number);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
// the bins run as commands, as users and RPC clients run them: through their shell line, which
// gives node the flags they need (V8's young generation held small: the peak RSS)
const tools = [{ name: 'crtools', cmd: [ours] }];
if (process.env.BEFORE_CRIU) tools.push({ name: 'before', cmd: [process.env.BEFORE_CRIU] });
if (process.env.CRIU) tools.push({ name: 'CRIU', cmd: [process.env.CRIU] });
else console.error('bench/scale: no CRIU= given, crtools alone');

/** wall ms, cpu ms (user + system), peak RSS MiB of one command, which must exit 0 */
const timed = (label, cmd, args, logDir) => {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '@@%U %S %M', ...cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const wall = performance.now() - t0;
  const err = r.stderr.toString();
  if (r.status !== 0) {
    let log = '';
    try { log = readFileSync(path.join(logDir, `${args[0]}.log`), 'utf8').split('\n').slice(-15).join('\n'); } catch { /* none */ }
    throw new Error(`${label} failed (${r.status}): ${err.slice(-600)}\n${log}`);
  }
  const m = err.match(/@@([\d.]+) ([\d.]+) (\d+)/);
  return { wall, cpu: (Number(m[1]) + Number(m[2])) * 1000, rss: Number(m[3]) / 1024 };
};

const memAvailableMiB = () => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) / 1024;
const maxMapCount = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
const skip = (curve, n) => {
  if (curve === 'mem' && 4 * n > memAvailableMiB()) return `needs ${4 * n} MiB free for the workload and its images twice, ${Math.round(memAvailableMiB())} MiB available`;
  if (curve === 'maps' && n + 200 > maxMapCount) return `vm.max_map_count is ${maxMapCount}`;
  return undefined;
};
const start = (curve, n) =>
  curve === 'mem'
    ? startWorkload(root, 'test/workloads/pattern.c', [n], 'crtools-bench-scale-')
    : curve === 'maps'
    ? startWorkload(root, 'test/workloads/manymaps.c', [n], 'crtools-bench-scale-')
    : startWorkload(root, 'bench/scale.c', [curve, n], 'crtools-bench-scale-', { gccArgs: ['-pthread'] });
const unit = { mem: 'MiB', tree: 'processes', threads: 'threads', maps: 'mappings' };

const results = []; // { curve, n, tool, op, wall, cpu, rss, load }
const skipped = [];
let code = 0;
const started = new Date().toISOString();
const loadStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
for (const curve of opts.curves.split(',')) {
  for (const n of list(opts[curve])) {
    const why = skip(curve, n);
    if (why) {
      skipped.push(`${curve} ${n} ${unit[curve]}: skipped, ${why}`);
      console.error(`bench/scale: ${curve} ${n}: skipped, ${why}`);
      continue;
    }
    const { work, pid, verdict } = start(curve, n);
    try {
      for (let r = 0; r < runs; r++) {
        for (const tool of tools) {
          const img = path.join(work, `img-${tool.name}-${r}`);
          mkdirSync(img);
          const base = { curve, n, tool: tool.name, run: r + 1 };
          const before = treeOf(pid);
          const d = timed(`${tool.name} dump ${curve} ${n}`, tool.cmd, ['dump', '-t', String(pid), '-D', img, '-o', 'dump.log'], img);
          results.push({ ...base, op: 'dump', ...d, load: loadavg() });
          for (const p of before) gone(p);
          const s = timed(`${tool.name} restore ${curve} ${n}`, tool.cmd, ['restore', '-D', img, '-d', '-o', 'restore.log'], img);
          const v = verdict();
          results.push({ ...base, op: 'restore', ...s, load: loadavg(), after: v });
          if (!v.startsWith('check ok')) {
            code = 1;
            console.error(`bench/scale: ${tool.name} ${curve} ${n}: after restore: ${v || 'no answer'}`);
          }
          for (const x of results.slice(-2)) if (!opts.md) console.log(JSON.stringify({ ...x, wall: Math.round(x.wall), cpu: Math.round(x.cpu), rss: +x.rss.toFixed(1) }));
          rmSync(img, { recursive: true, force: true });
        }
      }
    } catch (e) {
      code = 1;
      console.error(`bench/scale: ${curve} ${n}: ${e.message}`);
    } finally {
      const all = treeOf(pid);
      for (const p of all) kill(p);
      try { for (const p of all) gone(p); } catch { /* reported by the next start */ }
      rmSync(work, { recursive: true, force: true });
    }
  }
}

// the tables: one a curve, medians of the runs
const med = (xs, k) => median(xs.map((x) => x[k]));
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
console.log(`\nbench/scale.mjs, ${started} to ${new Date().toISOString()}, ${runs} run(s) a point, alternating; load average ${loadStart} at start, ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} at end`);
for (const curve of opts.curves.split(',')) {
  const pts = [...new Set(results.filter((x) => x.curve === curve).map((x) => x.n))];
  if (!pts.length) continue;
  const hasBefore = results.some((x) => x.tool === 'before');
  console.log(`\n| ${curve} (${unit[curve]}) | op | crtools wall ms (cpu) |${hasBefore ? ' before wall ms (cpu) |' : ''} CRIU wall ms (cpu) | wall ratio | cpu ratio | crtools peak RSS MiB | CRIU peak RSS MiB | load |`);
  console.log(`|---|---|---|${hasBefore ? '---|' : ''}---|---|---|---|---|---|`);
  for (const n of pts) {
    for (const op of ['dump', 'restore']) {
      const of = (tool) => results.filter((x) => x.curve === curve && x.n === n && x.op === op && x.tool === tool);
      const a = of('crtools');
      const b = of('CRIU');
      const pre = of('before');
      if (!a.length) continue;
      const cell = (xs) => (xs.length ? `${fmt(med(xs, 'wall'))} (${fmt(med(xs, 'cpu'))})` : '-');
      const ratio = (k) => (b.length ? (med(a, k) / med(b, k)).toFixed(2) : '-');
      const loads = [...a, ...b, ...pre].map((x) => Number(x.load));
      console.log(`| ${n} | ${op} | ${cell(a)} |${hasBefore ? ` ${cell(pre)} |` : ''} ${cell(b)} | ${ratio('wall')} | ${ratio('cpu')} | ${fmt(Math.max(...a.map((x) => x.rss)))} | ${b.length ? fmt(Math.max(...b.map((x) => x.rss))) : '-'} | ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} |`);
    }
  }
}
for (const s of skipped) console.log(`\n${s}`);
process.exit(code);
