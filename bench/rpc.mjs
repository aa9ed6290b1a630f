#!/usr/bin/env node
// bench/rpc.mjs [runs=5]: dump + restore of a `sleep`, the wall time a caller waits, through
// crtools' command line (`criu dump`, `criu restore -d`), its RPC worker (`criu swrk`, one per
// request as pycriu and runc use it) and its `criu service` (a running service, one worker per
// client); with CRIU=/path/to/criu (4.x) the same three through CRIU, in the same run, taken in
// alternation. Medians over the runs. Each sleep is killed by pid after its restore and the pid
// awaited free before the next. The figure the RPC issue sets: crtools' service against CRIU's
// command line.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argv, gone, kill, median, startSleep } from './lib/sleeps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ours = path.join(root, 'packages/cli/bin/criu.js');
const { CriuClient } = await import(path.join(root, 'packages/rpc/dist/index.js'));
const runs = Number(process.argv[2] ?? 5);
const criuRef = process.env.CRIU;
const work = mkdtempSync('/dev/shm/crtools-bench-rpc-');

/** a running `criu service` of this criu, and a client of it */
async function startService(bin, name) {
  const address = path.join(work, `${name}.socket`);
  const [cmd, args] = argv(bin, ['service', '--address', address]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 2000 && !existsSync(address); i++) await new Promise((r) => setTimeout(r, 5));
  if (!existsSync(address)) throw new Error(`${name}: criu service did not listen`);
  // a first request so that whatever the service prepares once is prepared
  await new CriuClient({ address }).version();
  return { child, client: new CriuClient({ address }) };
}

const tools = [{ name: 'crtools', bin: ours }];
if (criuRef) tools.push({ name: 'CRIU', bin: criuRef });
const services = [];
const ways = [];
for (const tool of tools) {
  const svc = await startService(tool.bin, tool.name);
  services.push(svc.child);
  const swrk = new CriuClient({ criu: tool.bin });
  ways.push(
    {
      label: `${tool.name} command line`,
      dump(pid, img) {
        const [cmd, args] = argv(tool.bin, ['dump', '-t', String(pid), '-D', img]);
        const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
        if (r.status !== 0) throw new Error(`${tool.name} dump failed (${r.status})`);
      },
      restore(pid, img) {
        const [cmd, args] = argv(tool.bin, ['restore', '-d', '-D', img]);
        const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
        if (r.status !== 0) throw new Error(`${tool.name} restore failed (${r.status})`);
      },
    },
    { label: `${tool.name} swrk`, dump: (pid, img) => swrk.dump({ imagesDir: img, pid }), restore: (pid, img) => swrk.restore({ imagesDir: img }) },
    { label: `${tool.name} service`, dump: (pid, img) => svc.client.dump({ imagesDir: img, pid }), restore: (pid, img) => svc.client.restore({ imagesDir: img }) },
  );
}

const t = new Map(ways.map((w) => [w.label, { dump: [], restore: [] }]));
let code = 0;
try {
  for (let i = 0; i < runs; i++) {
    for (const [k, way] of ways.entries()) {
      const pid = startSleep();
      const img = path.join(work, `${k}-${i}`);
      mkdirSync(img);
      let t0 = performance.now();
      await way.dump(pid, img);
      t.get(way.label).dump.push(performance.now() - t0);
      gone(pid);
      t0 = performance.now();
      await way.restore(pid, img);
      t.get(way.label).restore.push(performance.now() - t0);
      if (!existsSync(`/proc/${pid}`)) throw new Error(`${way.label}: restored ${pid} is not running`);
      kill(pid);
      gone(pid);
    }
  }
  const sum = (label) => median(t.get(label).dump) + median(t.get(label).restore);
  console.log(`dump + restore of a sleep, wall time a caller waits, median of ${runs} (ms):`);
  for (const way of ways) {
    const m = t.get(way.label);
    console.log(`  ${way.label.padEnd(22)} dump ${median(m.dump).toFixed(1).padStart(6)}   restore ${median(m.restore).toFixed(1).padStart(6)}   both ${sum(way.label).toFixed(1).padStart(6)}`);
  }
  const vs = (a, b) => `${(sum(a) / sum(b)).toFixed(2)}x`;
  console.log(`  crtools service / crtools command line: ${vs('crtools service', 'crtools command line')}`);
  if (criuRef) {
    console.log(`  crtools service / CRIU command line: ${vs('crtools service', 'CRIU command line')} (the goal: <= 1.00x)`);
    console.log(`  crtools service / CRIU service: ${vs('crtools service', 'CRIU service')}`);
    console.log(`  crtools swrk / CRIU swrk: ${vs('crtools swrk', 'CRIU swrk')}`);
  }
} catch (e) {
  console.error(`bench/rpc: ${e.message}`);
  code = 1;
} finally {
  for (const c of services) c.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
