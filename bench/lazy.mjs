#!/usr/bin/env node
// Benchmark: time from the start of `criu restore` to the workload's first instruction after the
// restore, lazily (`--lazy-pages`, pages served by `criu lazy-pages` from the images) against a
// plain restore of the same checkpoint, for 256 MiB, 1 GiB and 4 GiB (4 GiB only with room for it).
// The workload (test/workloads/lazycheck.c, tick mode) writes a CLOCK_REALTIME timestamp every
// 50 us, and appends to a second file each one that follows a gap of more than 20 ms: the first
// one there later than the restore's start is its first act after resuming (read once the restore
// command is back: the workload may well have run before the command exited).
// Each lazy run ends with the workload's own check of every word (and the daemon's summary).
//   node bench/lazy.mjs          (after `pnpm turbo run build --filter=@crtools/cli...`; root)
// Env: LAZY_BENCH_SIZES (MiB, comma separated; default 256,1024,4096), LAZY_BENCH_RUNS (default 3),
// LAZY_BENCH_DIR (where the images go; default /dev/shm), LAZY_BENCH_CRIU (the criu bin(s) to run).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { freemem, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// (LAZY_BENCH_CRIU: bin/criu.js of one or more builds, comma separated: each run restores with
// each build in turn, on the same checkpoint, so that a shared machine's load falls on all alike)
const builds = (process.env.LAZY_BENCH_CRIU ?? path.join(root, 'packages/cli/bin/criu.js')).split(',');
const label = (b) => (builds.length > 1 ? `[${path.resolve(b, '../../../..')}] ` : '');
const SIZES = (process.env.LAZY_BENCH_SIZES ?? '256,1024,4096').split(',').map(Number);
const RUNS = Number(process.env.LAZY_BENCH_RUNS ?? 3);
const base = process.env.LAZY_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const work = mkdtempSync(path.join(base, 'crtools-bench-lazy-'));
const bin = path.join(work, 'lazycheck');
execFileSync('gcc', ['-O2', '-o', bin, path.join(root, 'test/workloads/lazycheck.c')]);

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const criu = (criuBin, args) => {
  const r = spawnSync(process.execPath, [criuBin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`criu ${args.join(' ')}: ${r.stderr.trim()}`);
};
const gone = (pid) => {
  for (let i = 0; i < 1000 && existsSync(`/proc/${pid}`); i++) sleep(10);
};
const kill = (pid) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  gone(pid);
};
/** the first tick after a gap that is later than t0 (0n: none yet) */
function resumedAfter(file, t0) {
  let b;
  try {
    b = readFileSync(file);
  } catch {
    return 0n;
  }
  for (let o = 0; o + 8 <= b.length; o += 8) if (b.readBigUInt64LE(o) > t0) return b.readBigUInt64LE(o);
  return 0n;
}
/** ms from t0 until the workload's first tick after it */
function firstTick(file, t0) {
  for (let i = 0; i < 60_000; i++) {
    const t = resumedAfter(file, t0);
    if (t > t0) return Number(t - t0) / 1e6;
    sleep(1);
  }
  throw new Error('the workload never ran again');
}
function verdict(state, pid) {
  execFileSync('sh', ['-c', `: > ${state}`]);
  process.kill(pid, 'SIGUSR1');
  for (let i = 0; i < 12000; i++) {
    const s = existsSync(state) ? readFileSync(state, 'utf8') : '';
    if (s.startsWith('check')) return s.trim();
    sleep(10);
  }
  return 'no verdict';
}

function nodeStart() {
  const xs = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    xs.push(performance.now() - t);
  }
  return median(xs);
}

const rows = [];
console.log(`load average (1/5/15 min) at the start: ${load()}`);
const node = nodeStart();
try {
  for (const mib of SIZES) {
    const room = statfsSync(base).bavail * statfsSync(base).bsize;
    const need = mib * 2 ** 20;
    if (room < need * 1.2 || freemem() < need * 2.5) {
      console.log(`${mib} MiB: skipped (images dir ${base} has ${Math.round(room / 2 ** 20)} MiB free, ${Math.round(freemem() / 2 ** 20)} MiB of memory free)`);
      continue;
    }
    const dir = path.join(work, `ck-${mib}`);
    const state = path.join(work, `state-${mib}`);
    const tick = path.join(work, `tick-${mib}`);
    const resumed = path.join(work, `resumed-${mib}`);
    execFileSync(bin, [String(mib), 'tick', state, tick, resumed]);
    for (let i = 0; i < 6000 && !(existsSync(state) && /ready/.test(readFileSync(state, 'utf8'))); i++) sleep(10);
    const pid = Number(readFileSync(state, 'utf8').match(/pid=(\d+)/)[1]);
    execFileSync('mkdir', ['-p', dir]);
    criu(builds[0], ['dump', '-t', String(pid), '-D', dir]);
    gone(pid);
    const per = builds.map(() => ({ plain: [], lazy: [], checks: [], served: '' }));
    for (let run = 0; run < RUNS; run++) {
      for (const [k, criuBin] of builds.entries()) {
        const b = per[k];
        let t0 = nowNs();
        criu(criuBin, ['restore', '-D', dir, '-d']);
        b.plain.push(firstTick(resumed, t0));
        kill(pid);

        const log = path.join(dir, 'lazy-pages.log');
        const d = spawn(process.execPath, [criuBin, 'lazy-pages', '-D', dir, '-o', 'lazy-pages.log', '-v3'], { stdio: ['ignore', 'ignore', openSync(path.join(dir, 'lazy.err'), 'w')] });
        const done = new Promise((res) => d.on('exit', res));
        for (let i = 0; i < 2000 && !existsSync(path.join(dir, 'lazy-pages.socket')); i++) sleep(5);
        t0 = nowNs();
        criu(criuBin, ['restore', '-D', dir, '-d', '--lazy-pages']);
        b.lazy.push(firstTick(resumed, t0));
        const code = await done;
        if (code !== 0) throw new Error(`lazy-pages exited with ${code}: ${readFileSync(path.join(dir, 'lazy.err'), 'utf8')}`);
        b.served = (readFileSync(log, 'utf8').match(/\d+ page\(s\) copied.*/g) ?? ['']).pop();
        b.checks.push(verdict(state, pid));
        kill(pid);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    const l = load();
    for (const [k, b] of per.entries()) {
      const bad = b.checks.find((c) => c !== 'check ok bad=0');
      rows.push({ build: label(builds[k]), mib, plain: median(b.plain), lazy: median(b.lazy), plainAll: b.plain, lazyAll: b.lazy, check: bad ?? b.checks[0], served: b.served, load: l });
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`node start-up (node -e 0, median of 5): ${node.toFixed(1)} ms; runs per size: ${RUNS}`);
console.log('size       plain restore → first tick   lazy restore → first tick   lazy/plain   lazy − node start-up   check after the daemon finished');
for (const r of rows) {
  console.log(
    `${r.build}${String(r.mib).padStart(5)} MiB  ${r.plain.toFixed(1).padStart(12)} ms              ${r.lazy.toFixed(1).padStart(12)} ms            ${(r.lazy / r.plain).toFixed(3).padStart(6)}       ${(r.lazy - node).toFixed(1).padStart(8)} ms         ${r.check} (${r.served})`,
  );
}
// every run's figure and the load average (1/5/15 min) after the size's runs: the box is shared
for (const r of rows) console.log(`${r.build}${r.mib} MiB: plain ${r.plainAll.map((x) => x.toFixed(1)).join(', ')} ms; lazy ${r.lazyAll.map((x) => x.toFixed(1)).join(', ')} ms; load ${r.load}`);
for (const b of builds) {
  const rs = rows.filter((r) => r.build === label(b));
  if (rs.length > 1) console.log(`${label(b)}lazy, largest vs smallest: ${(rs[rs.length - 1].lazy / rs[0].lazy).toFixed(2)}× (flat: ~1)`);
}
