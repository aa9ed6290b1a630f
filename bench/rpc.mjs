#!/usr/bin/env node
// bench/rpc.mjs [runs=5]: dump + restore of a `sleep` through RPC (`criu swrk`, driven by
// @crtools/rpc's CriuClient, one worker per request as pycriu and runc use it) against the same
// through the command line (`criu dump`, `criu restore -d`), in alternation. Each figure is the
// wall time a caller waits, the criu process start included; medians over the runs. The sleep is
// killed by pid after each restore and the pid awaited free before the next.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const criu = path.join(root, 'packages/cli/bin/criu.js');
const { CriuClient } = await import(path.join(root, 'packages/rpc/dist/index.js'));
const runs = Number(process.argv[2] ?? 5);
const work = mkdtempSync('/dev/shm/crtools-bench-rpc-');
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const gone = (pid) => {
  for (let i = 0; i < 1000 && existsSync(`/proc/${pid}`); i++) sleepMs(5);
  if (existsSync(`/proc/${pid}`)) throw new Error(`pid ${pid} still taken`);
};
const kill = (pid) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
};
/** a sleep that is not our child (orphaned to init at once) */
const startSleep = () => Number(spawnSync('sh', ['-c', 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).stdout.trim());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const client = new CriuClient({ criu });

const t = { cli: { dump: [], restore: [] }, rpc: { dump: [], restore: [] } };
let code = 0;
try {
  for (let i = 0; i < runs; i++) {
    for (const how of ['cli', 'rpc']) {
      const pid = startSleep();
      const img = path.join(work, `${how}-${i}`);
      let t0 = performance.now();
      if (how === 'cli') {
        const d = spawnSync(process.execPath, [criu, 'dump', '-t', String(pid), '-D', img], { stdio: ['ignore', 'ignore', 'inherit'] });
        if (d.status !== 0) throw new Error(`criu dump failed (${d.status})`);
      } else {
        mkdirSync(img);
        await client.dump({ imagesDir: img, pid });
      }
      t[how].dump.push(performance.now() - t0);
      gone(pid);
      t0 = performance.now();
      if (how === 'cli') {
        const r = spawnSync(process.execPath, [criu, 'restore', '-d', '-D', img], { stdio: ['ignore', 'ignore', 'inherit'] });
        if (r.status !== 0) throw new Error(`criu restore failed (${r.status})`);
      } else {
        const r = await client.restore({ imagesDir: img });
        if (r.pid !== pid) throw new Error(`restored pid ${r.pid}, expected ${pid}`);
      }
      t[how].restore.push(performance.now() - t0);
      if (!existsSync(`/proc/${pid}`)) throw new Error(`restored ${pid} is not running`);
      kill(pid);
      gone(pid);
    }
  }
  const row = (how) => `${how === 'cli' ? 'command line' : 'RPC (swrk) '}  dump ${median(t[how].dump).toFixed(1)} ms   restore ${median(t[how].restore).toFixed(1)} ms`;
  console.log(`dump + restore of a sleep, median of ${runs}:`);
  console.log(`  ${row('cli')}`);
  console.log(`  ${row('rpc')}`);
  console.log(`  RPC / command line: dump ${(median(t.rpc.dump) / median(t.cli.dump)).toFixed(2)}x, restore ${(median(t.rpc.restore) / median(t.cli.restore)).toFixed(2)}x`);
} catch (e) {
  console.error(`bench/rpc: ${e.message}`);
  code = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
