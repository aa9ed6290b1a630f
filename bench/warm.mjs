#!/usr/bin/env node
// bench/warm.mjs [--tree 100] [--threads 0] [--runs 5]: how much of a dump of a tree (or of a
// process of many threads) is the cost of code run cold. The same workload (bench/scale.c) is
// dumped with -R, in alternation: by `criu dump` (a new Node process each time, as a user runs
// it), by @crtools/dump's dump() called again and again in this one process (its first call cold,
// the later ones with the code V8 has compiled and optimized meanwhile), and, with
// CRIU=/path/to/criu (4.x), by CRIU. Prints each figure's median (wall ms, and CPU ms where it is
// known: the command's through /usr/bin/time, the library's through process.cpuUsage()).
// The workload is killed by pid at the end.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorkload } from './lib/pattern.mjs';
import { gone, kill, median, treeOf } from './lib/sleeps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = { tree: '100', threads: '0', runs: '5' };
for (let i = 2; i < process.argv.length; i += 2) opts[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const runs = Number(opts.runs);
const [curve, n] = Number(opts.threads) > 0 ? ['threads', Number(opts.threads)] : ['tree', Number(opts.tree)];
const criuRef = process.env.CRIU;
const { dump } = await import(path.join(root, 'packages/dump/dist/index.js'));

const w = startWorkload(root, 'bench/scale.c', [curve, n], 'crtools-bench-warm-', { gccArgs: ['-pthread'] });
const dir = path.join(w.work, 'images');
const fresh = () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
};
/** one command under /usr/bin/time: wall and CPU (user + system) ms */
const timed = (cmd, args) => {
  fresh();
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '@@%U %S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString().slice(0, 300)}`);
  const m = /@@([\d.]+) ([\d.]+)/.exec(r.stderr.toString());
  return { wall, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
};
const results = { command: [], 'library, first call': [], 'library, later calls': [], CRIU: [] };
try {
  const args = ['dump', '-t', String(w.pid), '-D', dir, '-R', '--shell-job'];
  for (let r = 0; r < runs; r++) {
    results.command.push(timed(path.join(root, 'packages/cli/bin/criu.js'), args));
    if (criuRef) results.CRIU.push(timed(criuRef, args));
    fresh();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await dump({ pid: w.pid, images_dir: dir, leave_running: true, shell_job: true });
    const c = process.cpuUsage(c0);
    results[r === 0 ? 'library, first call' : 'library, later calls'].push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 });
  }
  const verdict = w.verdict();
  console.log(`bench/warm.mjs: ${curve} of ${n}, ${runs} run(s), ${new Date().toISOString()}; the workload after: ${verdict}`);
  console.log('| dump -R by | runs | wall ms (median) | CPU ms (median) |');
  console.log('|---|---|---|---|');
  for (const [k, v] of Object.entries(results)) {
    if (v.length) console.log(`| ${k} | ${v.length} | ${median(v.map((x) => x.wall)).toFixed(0)} | ${median(v.map((x) => x.cpu)).toFixed(0)} |`);
  }
} finally {
  const all = treeOf(w.pid);
  for (const p of all) kill(p);
  try { for (const p of all) gone(p); } catch { /* a pid still there: said by the next start */ }
  rmSync(w.work, { recursive: true, force: true });
}
