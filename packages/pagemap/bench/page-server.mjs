#!/usr/bin/env node
// Page-server throughput: a client streams MiB of pages through a unix socket to a server in the
// same process writing into /dev/shm. Usage: node bench/page-server.mjs [small]  (small = 1-page entries)
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { servePageServer, PageServerClient, writePages } from '../dist/index.js';
const dir = mkdtempSync('/dev/shm/ps-bench-');
const sockPath = join(dir, 's.sock');
const MiB = 512, small = process.argv[2] === 'small';
const pat = Buffer.alloc(1 << 20, 1);
const source = { read(ranges, dest) { let off = 0; for (const r of ranges) { const len = r.nrPages * 4096; for (let k = 0; k < len; k += pat.length) pat.copy(dest, off + k, 0, Math.min(pat.length, len - k)); off += len; } } };
const pages = (MiB << 20) / 4096, per = small ? 1 : 256;
const entries = Array.from({ length: pages / per }, (_, i) => ({ vaddr: 0x10000000n + BigInt(i * per * 2 * 4096), nrPages: per, flags: 4 }));
let session;
const server = createServer((s) => { session = servePageServer(s, { dir }).finally(() => s.end()); });
await new Promise((r) => server.listen(sockPath, r));
const sock = connect(sockPath); await new Promise((r) => sock.once('connect', r));
const t = process.hrtime.bigint();
const c = new PageServerClient(sock);
const sink = await c.openSink('task', 1);
await writePages({ entries, source, sink });
await c.close(); sock.end(); await session; server.close();
console.log(small ? '1-page entries' : '256-page entries', MiB, 'MiB in', (Number(process.hrtime.bigint() - t) / 1e9).toFixed(2), 's,', (MiB / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(0), 'MiB/s, maxRSS MiB', (process.resourceUsage().maxRSS / 1024).toFixed(0));
rmSync(dir, { recursive: true, force: true });
