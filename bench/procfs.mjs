#!/usr/bin/env node
// Benchmark of @crtools/procfs: parse /proc/PID/maps of a process with 60,000
// mappings and compare with the time the kernel takes to produce the file; read
// the pagemap of a 1 GiB region. Needs gcc and a built packages/procfs (pnpm
// --filter @crtools/procfs build). Prints figures on stdout.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { parseMaps, parseMapsTable, vmaJson, readProcFile, openPagemap, pagemapRuns } = await import(join(root, 'packages/procfs/dist/index.js'));

const AREAS = Number(process.env.BENCH_AREAS ?? 60000);
const BIG_MIB = 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

const work = mkdtempSync(join(tmpdir(), 'procfs-bench-'));
const exe = join(work, 'zoo');
const cc = spawnSync('gcc', ['-O2', '-o', exe, join(root, 'packages/procfs/test/helpers/zoo.c'), '-lrt', '-lpthread'], { encoding: 'utf8' });
if (cc.status !== 0) {
  console.error(`gcc failed: ${cc.stderr}`);
  process.exit(1);
}
const child = spawn(exe, [work, String(AREAS), String(BIG_MIB)], { stdio: ['ignore', 'pipe', 'inherit'] });
let big;
let grandchild = 0;
const pid = await new Promise((resolve, reject) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const b = /big ([0-9a-f]+) ([0-9a-f]+)/.exec(buf);
    if (b) big = [BigInt('0x' + b[1]), BigInt('0x' + b[2])];
    const c = /child (\d+)/.exec(buf);
    if (c) grandchild = Number(c[1]);
    const m = /ready (\d+)/.exec(buf);
    if (m) resolve(Number(m[1]));
  });
  child.on('exit', (c) => reject(new Error(`workload exited with ${c}`)));
});

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

try {
  const read = [], decode = [], table = [], objects = [], json = [];
  let lines = 0, records = 0, bytes = 0, text = '';
  // Each step in its own phase (so one step's garbage does not land in the next one's
  // timing), after two warm-up runs.
  const phase = (out, f) => {
    for (let i = 0; i < RUNS + 2; i++) {
      const t = process.hrtime.bigint();
      f();
      if (i >= 2) out.push(ms(t));
    }
  };
  phase(read, () => { bytes = readProcFile(`/proc/${pid}/maps`).length; });
  const buf = readProcFile(`/proc/${pid}/maps`);
  phase(decode, () => { text = buf.toString('utf8'); });
  lines = text.split('\n').length - 1;
  let tab;
  phase(table, () => { tab = parseMapsTable(text); });
  let vmas;
  phase(objects, () => { vmas = parseMaps(text); });
  phase(json, () => { let n = 0; for (const v of vmas) n += vmaJson(v).length; });
  records = vmas.length;
  if (tab.length !== records || records !== lines) throw new Error('table, records and lines disagree');
  const fmt = (xs) => `min ${Math.min(...xs).toFixed(1).padStart(6)} ms, median ${median(xs).toFixed(1).padStart(6)} ms`;
  const r = median(read), d = median(decode), p = median(table), o = median(objects);
  console.log(`maps: ${lines} lines (${(bytes / 1048576).toFixed(1)} MiB), ${records} records, ${RUNS} runs`);
  console.log(`  kernel (read of /proc/PID/maps):      ${fmt(read)}`);
  console.log(`  utf8 decode:                          ${fmt(decode)}`);
  console.log(`  parse + classify -> MapsTable:        ${fmt(table)}  = ${Math.round(records / (p / 1000)).toLocaleString('en')} records/s`);
  console.log(`  parse + classify -> Vma objects:      ${fmt(objects)}  = ${Math.round(records / (o / 1000)).toLocaleString('en')} records/s`);
  console.log(`  parsing / kernel (medians, decode included): table ${((d + p) / r).toFixed(2)}, objects ${((d + o) / r).toFixed(2)}  (target <= 1.00)`);
  console.log(`  JSON Lines serialization (vmaJson):   ${fmt(json)}`);

  const t0 = process.hrtime.bigint();
  const b = spawnSync(process.execPath, [join(root, 'packages/procfs/bin/procfs.js'), 'maps', String(pid)], { maxBuffer: 1 << 28 });
  console.log(`  bin end-to-end (procfs maps PID > pipe): ${ms(t0).toFixed(0)} ms, ${b.stdout.toString().split('\n').length - 1} lines, exit ${b.status}`);

  const pmT = [], runsT = [];
  let pages = 0, present = 0;
  const pm = openPagemap(pid);
  for (let i = 0; i < RUNS; i++) {
    let t = process.hrtime.bigint();
    const range = pm.read(big[0], big[1]);
    pmT.push(ms(t));
    t = process.hrtime.bigint();
    present = 0;
    for (const run of pagemapRuns(range)) present += run.pages;
    runsT.push(ms(t));
    pages = range.entries.length;
  }
  pm.close();
  console.log(`pagemap: 1 GiB region, ${pages} entries (${present} present), one pread`);
  console.log(`  read (one pread of ${pages * 8 / 1048576} MiB):          min ${Math.min(...pmT).toFixed(1)} ms, median ${median(pmT).toFixed(1)} ms`);
  console.log(`  scan for present runs:                min ${Math.min(...runsT).toFixed(1)} ms, median ${median(runsT).toFixed(1)} ms`);
} finally {
  if (grandchild > 1) process.kill(grandchild, 'SIGKILL');
  process.kill(child.pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
