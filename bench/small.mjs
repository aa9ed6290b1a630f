#!/usr/bin/env node
// bench/small.mjs [runs=11]: the small-process figures of the command line, the whole process
// as a user waits for it: `criu dump -t <sleep> -D d`, `criu restore -D d -d`, `criu check`, and
// `crit decode -i core-N.img` of one core image. With CRIU=/path/to/criu (4.x) CRIU runs the
// same three criu commands in the same run, taken in alternation with crtools; crit is compared
// with Debian's /usr/bin/crit (Python) when it is there. Prints medians (ms) and ratios.
// The children get this process's environment: NODE_EXTRA_CA_CERTS (set on these machines)
// slows every Node start-up by ~40 ms; the first line says whether it is set.
// BEFORE_CRIU=<criu entry .js> (and BEFORE_CRIT=<crit entry .js>) add another build of crtools
// to the alternation, e.g. the one before a change.
// Each sleep is killed by pid after its restore and its pid awaited free before the next.
// Every command is run as a user runs it: its file executed (bin/criu.js through its own first
// lines, as a PATH link or npm's link does), not `node bin/criu.js`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gone, kill, median, startSleep } from './lib/sleeps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ours = path.join(root, 'packages/cli/bin/criu.js');
const oursCrit = path.join(root, 'packages/cli/bin/crit.js');
const runs = Number(process.argv[2] ?? 11);
const criuRef = process.env.CRIU;
const debianCrit = existsSync('/usr/bin/crit') ? ['/usr/bin/python3', ['/usr/bin/crit']] : undefined;
const work = mkdtempSync('/dev/shm/crtools-bench-small-');
const haveTime = existsSync('/usr/bin/time');
/**
 * Wall time (ms) of one command, which must exit 0; its CPU time (user + system, ms, through
 * /usr/bin/time) goes into cpu[label]: on a machine shared with other work the CPU time is the
 * steadier figure.
 */
const cpu = new Map();
const argv = (bin, args) => [bin, args];
const timed = (label, [cmd, args]) => {
  const full = haveTime ? ['/usr/bin/time', ['-f', '@@%U %S', cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const r = spawnSync(full[0], full[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  const err = r.stderr.toString();
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${err.slice(0, 300)}`);
  const m = err.match(/@@([\d.]+) ([\d.]+)/);
  if (m) (cpu.get(label) ?? cpu.set(label, []).get(label)).push((Number(m[1]) + Number(m[2])) * 1000);
  return ms;
};

const tools = [{ name: 'crtools', bin: ours, crit: oursCrit }];
if (process.env.BEFORE_CRIU) tools.push({ name: 'before', bin: process.env.BEFORE_CRIU, crit: process.env.BEFORE_CRIT });
if (criuRef) tools.push({ name: 'CRIU', bin: criuRef });
const t = new Map();
const add = (k, ms) => (t.get(k) ?? t.set(k, []).get(k)).push(ms);
let core;
let code = 0;
try {
  console.log(`NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'not set'}; node -e 0 and ${runs} runs of each, alternating`);
  for (let i = 0; i < runs; i++) {
    add('node -e 0', timed('node -e 0', [process.execPath, ['-e', '0']]));
    for (const tool of tools) {
      const pid = startSleep();
      const img = path.join(work, `${tool.name}-${i}`);
      mkdirSync(img);
      add(`${tool.name} dump`, timed(`${tool.name} dump`, argv(tool.bin, ['dump', '-t', String(pid), '-D', img])));
      gone(pid);
      add(`${tool.name} restore`, timed(`${tool.name} restore`, argv(tool.bin, ['restore', '-D', img, '-d'])));
      if (!existsSync(`/proc/${pid}`)) throw new Error(`${tool.name}: restored ${pid} is not running`);
      kill(pid);
      gone(pid);
      add(`${tool.name} check`, timed(`${tool.name} check`, argv(tool.bin, ['check'])));
      core ??= path.join(img, readdirSync(img).find((f) => /^core-\d+\.img$/.test(f)));
      if (tool.crit) add(`${tool.name} crit`, timed(`${tool.name} crit`, argv(tool.crit, ['decode', '-i', core])));
    }
    if (debianCrit) add('Debian crit', timed('Debian crit', [debianCrit[0], [...debianCrit[1], 'decode', '-i', core]]));
  }
  const m = (k) => median(t.get(k));
  const c = (k) => (cpu.has(k) ? median(cpu.get(k)).toFixed(0) : '-');
  console.log(`node -e 0: ${m('node -e 0').toFixed(1)} ms (cpu ${c('node -e 0')} ms)`);
  const ratio = (a, b) => (b === undefined ? '-' : (a / b).toFixed(2));
  console.log('| measure | crtools wall (cpu) ms | reference wall (cpu) ms | wall ratio |');
  console.log('|---|---|---|---|');
  const row = (label, k, refK, refName) => {
    const ref = refK && t.has(refK) ? m(refK) : undefined;
    console.log(`| ${label} | ${m(k).toFixed(1)} (${c(k)}) | ${ref === undefined ? '-' : `${ref.toFixed(1)} (${c(refK)})`} ${refName} | ${ratio(m(k), ref)} |`);
  };
  for (const who of tools.filter((x) => x.name !== 'CRIU').map((x) => x.name)) {
    const w = who === 'crtools' ? '' : ` (${who})`;
    row(`dump of a \`sleep\`${w}`, `${who} dump`, 'CRIU dump', 'CRIU 4.2');
    row(`restore of a \`sleep\`${w}`, `${who} restore`, 'CRIU restore', 'CRIU 4.2');
    row(`\`criu check\`${w}`, `${who} check`, 'CRIU check', 'CRIU 4.2');
    if (t.has(`${who} crit`)) row(`\`crit decode\` of one core image${w}`, `${who} crit`, 'Debian crit', 'Debian crit');
  }
} catch (e) {
  console.error(`bench/small: ${e.message}`);
  code = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
