#!/usr/bin/env node
// bench/restore.mjs [MiB=1024] [runs=3]: checkpoint a pattern process of MiB MiB into tmpfs
// (/dev/shm) with `criu dump`, then time `criu restore -d` of it (process start to exit, the
// plan built from the images included), verify every word with the workload's own check, kill
// it by pid and repeat. The reference, when a CRIU binary is at hand (CRIU=/path/to/criu, or a
// `criu` on PATH that says version 4 or later): the same process dumped by CRIU itself and
// restored by it, in alternation with ours in the same run; ours is also timed on CRIU's images.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const reference = (() => {
  for (const c of [process.env.CRIU, 'criu'].filter(Boolean)) {
    const v = spawnSync(c, ['--version'], { encoding: 'utf8' });
    const m = /Version: (\d+)\.(\d+)/.exec(v.stdout ?? '');
    // (crtools' own criu reports the CRIU version it implements, then a "crtools:" line)
    if (m && Number(m[1]) >= 4 && !/^crtools:/m.test(v.stdout)) return { bin: c, version: `${m[1]}.${m[2]}` };
  }
  return undefined;
})();
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
  let criuImages;
  if (reference) {
    // the same process (restored by us) dumped by CRIU itself
    const r = spawnSync(criu, ['restore', '-D', images, '-d'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`criu restore failed (${r.status})`);
    criuImages = path.join(work, 'img-criu');
    mkdirSync(criuImages);
    const c = spawnSync(reference.bin, ['dump', '-t', String(pid), '-D', criuImages, '-o', 'dump.log'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (c.status !== 0) throw new Error(`CRIU ${reference.version} dump failed (${c.status}), see ${criuImages}/dump.log`);
    gone(pid);
  }
  const kinds = [['ours', criu, images]];
  if (reference) kinds.push([`CRIU ${reference.version}`, reference.bin, criuImages], ['ours on CRIU images', criu, criuImages]);
  const times = new Map(kinds.map(([k]) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [kind, bin, dir] of kinds) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(bin, ['restore', '-D', dir, '-d', ...(bin === criu ? [] : ['-o', 'restore.log'])], { stdio: ['ignore', 'ignore', 'inherit'] });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r.status !== 0) throw new Error(`${kind}: restore failed (${r.status})`);
      writeFileSync(state, '');
      process.kill(pid, 'SIGUSR1');
      const v = waitFor((x) => x.startsWith('check'), 60_000);
      process.kill(pid, 'SIGKILL');
      gone(pid);
      times.get(kind).push(s);
      console.log(`run ${i + 1}: ${kind}: restore of ${mib} MiB in ${s.toFixed(3)} s, verdict: ${v}`);
      if (v !== 'check ok bad=0') code = 1;
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const [kind] of kinds) {
    const t = times.get(kind);
    const best = Math.min(...t);
    console.log(`${kind}: restore ${mib} MiB: best ${best.toFixed(3)} s (${(mib / best).toFixed(0)} MiB/s), median ${median(t).toFixed(3)} s`);
  }
  if (reference) {
    const ref = median(times.get(`CRIU ${reference.version}`));
    console.log(`ratio ours / CRIU ${reference.version} (medians): ${(median(times.get('ours')) / ref).toFixed(2)}, on CRIU's own images ${(median(times.get('ours on CRIU images')) / ref).toFixed(2)}`);
  } else {
    console.log('no CRIU 4+ binary here (CRIU=/path/to/criu to compare in the same run)');
  }
} finally {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = code;
