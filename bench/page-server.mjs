#!/usr/bin/env node
// bench/page-server.mjs [MiB=1024]: page-server throughput over loopback. A pattern process of
// MiB MiB is dumped with `criu dump -R --page-server` to a `criu page-server` writing into tmpfs
// (/dev/shm), for each pair of dumper → server: crtools → crtools, crtools → CRIU 4.2,
// CRIU 4.2 → crtools and CRIU 4.2 → CRIU 4.2 (the reference), the CRIU ones where a CRIU 4+
// binary is at hand (CRIU=/path, default /tmp/criu-4.2/criu/criu). Reports the dump's wall
// time and the pages images' size over it (MiB/s), and checks the workload's pattern at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPattern } from './lib/pattern.mjs';
import { sleepMs as sleep } from './lib/sleeps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ours = path.join(root, 'packages/cli/bin/criu.js');
const mib = Number(process.argv[2] ?? 1024);
const criuPath = [process.env.CRIU, '/tmp/criu-4.2/criu/criu'].find((c) => c && existsSync(c));
const { work, pid, verdict } = startPattern(root, mib, 'crtools-bench-ps-');

const run = (who, args) => who === 'crtools'
  ? spawnSync(process.execPath, [ours, ...args], { encoding: 'utf8', timeout: 600_000 })
  : spawnSync(criuPath, args, { encoding: 'utf8', timeout: 600_000 });
const freePort = () => Number(spawnSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"], { encoding: 'utf8' }).stdout.trim());

const pairs = [['crtools', 'crtools'], ...(criuPath ? [['crtools', 'CRIU'], ['CRIU', 'crtools'], ['CRIU', 'CRIU']] : [])];
if (!criuPath) console.log('no CRIU 4+ binary: crtools → crtools only');
let rc = 0;
try {
  for (const [dumper, server] of pairs) {
    const dir = path.join(work, 'img');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const port = freePort();
    const s = run(server, ['page-server', '-D', dir, '--address', '127.0.0.1', '--port', String(port), '--daemon', '--pidfile', 'ps.pid', '-o', 'ps.log']);
    if (s.status !== 0) throw new Error(`${server} page-server: ${s.stderr}`);
    const t0 = process.hrtime.bigint();
    const d = run(dumper, ['dump', '-t', String(pid), '-D', dir, '-R', '-o', 'dump.log', '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (d.status !== 0) throw new Error(`${dumper} dump: ${d.stderr}`);
    // the server has its last bytes on disk once it is gone
    const spid = Number(readFileSync(path.join(dir, 'ps.pid'), 'utf8'));
    for (let i = 0; i < 500 && existsSync(`/proc/${spid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${spid}/stat`, 'utf8')); i++) sleep(10);
    const bytes = readdirSync(dir).filter((f) => f.startsWith('pages-')).reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
    console.log(`${dumper.padEnd(7)} dump → ${server.padEnd(7)} page-server: ${(bytes / 2 ** 20).toFixed(0)} MiB of pages in ${secs.toFixed(2)} s, ${(bytes / 2 ** 20 / secs).toFixed(0)} MiB/s (dump wall time, freeze to images)`);
  }
  const v = verdict();
  console.log(`workload after the dumps: ${v}`);
  if (v !== 'check ok bad=0') rc = 1;
} finally {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = rc;
