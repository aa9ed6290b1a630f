#!/usr/bin/env node
// Benchmark: our crit against Debian's crit 3.17 (Python), in the same run.
//   node bench/crit-decode.mjs            (after `pnpm --filter @crtools/cli... build`)
// Env: CRIT_BENCH_ENTRIES (default 1000000), CRIT_BENCH_CORES (default 1000),
//      CRIT_BENCH_PER_FILE (how many of the cores to decode one process each, default 50).
// Measures wall time and peak RSS (VmHWM, via /usr/bin/time -f %M) of each process.
import { spawnSync } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const critBin = path.join(root, 'packages/cli/bin/crit.js');
const fixtures = path.resolve(root, '../shared/fixtures/criu-4.2');
const DEBIAN = ['/usr/bin/python3', '/usr/bin/crit'];
const OURS = [process.execPath, critBin];
const ENTRIES = Number(process.env.CRIT_BENCH_ENTRIES ?? 1_000_000);
const CORES = Number(process.env.CRIT_BENCH_CORES ?? 1000);
const PER_FILE = Math.min(CORES, Number(process.env.CRIT_BENCH_PER_FILE ?? 50));

if (!existsSync(path.join(root, 'packages/cli/dist/crit-main.js'))) {
  console.error('build first: pnpm --filter @crtools/cli... build');
  process.exit(1);
}
const haveDebian = existsSync('/usr/bin/crit') && spawnSync(DEBIAN[0], [DEBIAN[1], '--help']).status === 0;
const haveTime = existsSync('/usr/bin/time');

/** Run a command; returns wall seconds, CPU seconds (user+sys) and peak RSS in KiB. */
function run(cmd, args, { input, stdout = 'ignore' } = {}) {
  const full = haveTime ? ['/usr/bin/time', ['-f', '@@%e %M %U %S', cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full[1], { input, stdio: [input ? 'pipe' : 'ignore', stdout, 'pipe'], maxBuffer: 1 << 30 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const err = r.stderr.toString();
  const m = err.match(/@@([\d.]+) (\d+) ([\d.]+) ([\d.]+)/);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${err.replace(/@@.*\n?/, '').slice(0, 500)}`);
  return { secs, cpu: m ? Number(m[3]) + Number(m[4]) : NaN, rssKiB: m ? Number(m[2]) : NaN, stdout: r.stdout };
}

const fmt = (s) => `${s.toFixed(2)} s`;
// The machine may be shared: CPU time (user+sys) is the steadier measure; wall time is shown too.
const mib = (k) => `${(k / 1024).toFixed(1)} MiB`;
const rows = [];
function report(name, o, d) {
  const ratio = d ? d.cpu / o.cpu : NaN;
  const wratio = d ? d.secs / o.secs : NaN;
  rows.push({ name, ours: o.secs, debian: d?.secs, ratio, rss: o.rssKiB, drss: d?.rssKiB });
  console.log(
    `${name.padEnd(44)} ours cpu ${fmt(o.cpu).padStart(8)} wall ${fmt(o.secs).padStart(8)} peak ${mib(o.rssKiB).padStart(9)}` +
      (d
        ? ` | debian cpu ${fmt(d.cpu).padStart(8)} wall ${fmt(d.secs).padStart(8)} peak ${mib(d.rssKiB).padStart(9)} | ${ratio.toFixed(1)}x cpu, ${wratio.toFixed(1)}x wall`
        : ' | debian n/a'),
  );
}

const tmp = mkdtempSync(path.join(tmpdir(), 'crit-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
console.log(`crit decode benchmark (node ${process.version}; Debian crit ${haveDebian ? 'present' : 'absent'})\n`);

// ---------------------------------------------------------------- 1. the fixture set
const fixtureFiles = [];
for (const d of readdirSync(fixtures).filter((d) => statSync(path.join(fixtures, d)).isDirectory() && d !== 'bin' && d !== 'src')) {
  for (const f of readdirSync(path.join(fixtures, d))) if (f.endsWith('.img') && !/^pages-/.test(f)) fixtureFiles.push(path.join(fixtures, d, f));
}
{
  const sum = (tool) => {
    let secs = 0;
    let cpu = 0;
    let rss = 0;
    for (const f of fixtureFiles) {
      const r = run(tool[0], [...tool.slice(1), 'decode', '-i', f, '-o', '/dev/null']);
      secs += r.secs;
      cpu += r.cpu;
      rss = Math.max(rss, r.rssKiB);
    }
    return { secs, cpu, rssKiB: rss };
  };
  report(`fixture set: ${fixtureFiles.length} images, 1 process each`, sum(OURS), haveDebian ? sum(DEBIAN) : undefined);
  const small = path.join(fixtures, 'sleep', 'pstree.img');
  const so = run(OURS[0], [...OURS.slice(1), 'decode', '-i', small, '-o', '/dev/null']);
  const sd = haveDebian ? run(DEBIAN[0], [...DEBIAN.slice(1), 'decode', '-i', small, '-o', '/dev/null']) : undefined;
  report('one small image (process start-up)', so, sd);
}

// ---------------------------------------------------------------- 2. a 1M-entry pagemap
const pmJson = path.join(tmp, 'pagemap.json');
const pmImg = path.join(tmp, 'pagemap-1.img');
/** crit JSON of a pagemap with n entries (1- to 4-page runs with holes; some 64-bit addresses above 2^53). */
async function writePagemapJson(file, n) {
  const w = createWriteStream(file);
  w.write('{"magic": "PAGEMAP", "entries": [{"pages_id": 1}');
  let chunk = '';
  let vaddr = 0x7f0000000000n;
  for (let i = 0; i < n; i++) {
    const pages = (i & 1) + 1 + (i & 2);
    const addr = i % 1000 === 999 ? 0xffffffffff000000n - BigInt(i) * 0x1000n : vaddr;
    chunk += `, {"vaddr": ${addr}, "compat_nr_pages": 0, "flags": 4, "nr_pages": ${pages}}`;
    vaddr += BigInt(pages + 1) * 0x1000n;
    if (chunk.length > 1 << 16) {
      if (!w.write(chunk)) await new Promise((r) => w.once('drain', r));
      chunk = '';
    }
  }
  w.write(chunk + ']}');
  await new Promise((r) => w.end(r));
}
{
  await writePagemapJson(pmJson, ENTRIES);
  const e = run(OURS[0], [...OURS.slice(1), 'encode', '-i', pmJson, '-o', pmImg]);
  report(`encode ${ENTRIES} pagemap entries (ours)`, e);
  console.log(`  pagemap image: ${(statSync(pmImg).size / 1048576).toFixed(1)} MiB, JSON ${(statSync(pmJson).size / 1048576).toFixed(1)} MiB`);
  const o = run(OURS[0], [...OURS.slice(1), 'decode', '-i', pmImg, '-o', '/dev/null']);
  const d = haveDebian ? run(DEBIAN[0], [...DEBIAN.slice(1), 'decode', '-i', pmImg, '-o', '/dev/null']) : undefined;
  report(`decode ${ENTRIES}-entry pagemap`, o, d);
  const op = run(OURS[0], [...OURS.slice(1), 'decode', '--pretty', '-i', pmImg, '-o', '/dev/null']);
  const dp = haveDebian ? run(DEBIAN[0], [...DEBIAN.slice(1), 'decode', '--pretty', '-i', pmImg, '-o', '/dev/null']) : undefined;
  report(`decode --pretty ${ENTRIES}-entry pagemap`, op, dp);
  // streaming: a tenth of the entries needs about the same memory, and the full image decodes
  // with V8's old space capped at 40 MiB (the decoded entries alone would need far more)
  const smallJson = path.join(tmp, 'pagemap-small.json');
  const smallImg = path.join(tmp, 'pagemap-2.img');
  await writePagemapJson(smallJson, Math.floor(ENTRIES / 10));
  run(OURS[0], [...OURS.slice(1), 'encode', '-i', smallJson, '-o', smallImg]);
  report(`decode ${Math.floor(ENTRIES / 10)}-entry pagemap`, run(OURS[0], [...OURS.slice(1), 'decode', '-i', smallImg, '-o', '/dev/null']));
  report(`decode ${ENTRIES}-entry pagemap, old space <= 40 MiB`, run(OURS[0], ['--max-old-space-size=40', ...OURS.slice(1), 'decode', '-i', pmImg, '-o', '/dev/null']));
  // (not compared with Debian's text: crit 3.17 does not know nr_pages = 5; see test/crit)
}

// ---------------------------------------------------------------- 3. 1,000 core images
const coreDir = path.join(tmp, 'cores');
{
  rmSync(coreDir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', coreDir]);
  // one real core image (re-encoded by us from the sleep fixture), copied for each task
  const coreJson = run(OURS[0], [...OURS.slice(1), 'decode', '-i', path.join(fixtures, 'sleep', 'core-2680.img')], { stdout: 'pipe' }).stdout;
  const core = path.join(tmp, 'core.img');
  run(OURS[0], [...OURS.slice(1), 'encode', '-o', core], { input: coreJson });
  const entries = [];
  for (let i = 0; i < CORES; i++) {
    const pid = 1000 + i;
    entries.push(`{"pid": ${pid}, "ppid": ${i === 0 ? 0 : 1000}, "pgid": 1000, "sid": 1000, "threads": [${pid}]}`);
    copyFileSync(core, path.join(coreDir, `core-${pid}.img`));
  }
  const ps = `{"magic": "PSTREE", "entries": [${entries.join(', ')}]}`;
  writeFileSync(path.join(tmp, 'pstree.json'), ps);
  run(OURS[0], [...OURS.slice(1), 'encode', '-i', path.join(tmp, 'pstree.json'), '-o', path.join(coreDir, 'pstree.img')]);

  const o = run(OURS[0], [...OURS.slice(1), 'x', coreDir, 'ps'], { stdout: 'pipe' });
  const d = haveDebian ? run(DEBIAN[0], [...DEBIAN.slice(1), 'x', coreDir, 'ps'], { stdout: 'pipe' }) : undefined;
  report(`x ps over ${CORES} core images (1 process)`, o, d);
  if (d) console.log(`  x ps output identical to Debian's: ${Buffer.compare(o.stdout, d.stdout) === 0 ? 'yes' : 'NO'}`);

  const per = (tool) => {
    let secs = 0;
    let cpu = 0;
    let rss = 0;
    for (let i = 0; i < PER_FILE; i++) {
      const r = run(tool[0], [...tool.slice(1), 'decode', '-i', path.join(coreDir, `core-${1000 + i}.img`), '-o', '/dev/null']);
      secs += r.secs;
      cpu += r.cpu;
      rss = Math.max(rss, r.rssKiB);
    }
    return { secs, cpu, rssKiB: rss };
  };
  report(`decode ${PER_FILE} core images, 1 process each`, per(OURS), haveDebian ? per(DEBIAN) : undefined);
}

console.log('\npeak RSS of our decode (streaming: live heap bounded; RSS above start-up is V8 GC slack):');
for (const r of rows.filter((r) => r.name.startsWith('one small image') || (r.name.startsWith('decode ') && r.name.includes('pagemap') && !r.name.includes('pretty'))))
  console.log(`  ${r.name.padEnd(44)} ${mib(r.rss)}${r.drss ? ` (Debian ${mib(r.drss)})` : ''}`);
