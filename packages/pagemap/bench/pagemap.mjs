#!/usr/bin/env node
// Micro-benchmark: stream N MiB (default 1024) of pages from an in-memory page source into
// pagemap-1.img + pages-1.img under /dev/shm, then read them back. Prints throughput and peak
// RSS: the writer holds only its transfer buffers, so RSS must stay far below the data size.
// Usage: node bench/pagemap.mjs [MiB] [chunkMiB]   (build the package first)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { planDump, writePagemap, openPageReader, PME_PRESENT, VMA_AREA_REGULAR, VMA_ANON_PRIVATE } from '../dist/index.js';

const mib = Number(process.argv[2] ?? 1024);
const chunkMiB = Number(process.argv[3] ?? 8);
const pages = (mib << 20) / 4096;
const base = 0x7f0000000000n;
const dir = mkdtempSync(join('/dev/shm', 'pagemap-bench-'));

// The "task": one private anonymous VMA, every page present. Its contents are generated from
// a 1 MiB pattern so that the source itself stays small.
const pattern = Buffer.alloc(1 << 20);
for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE((i * 2654435761) >>> 0, i);
const source = {
  read(ranges, dest) {
    let off = 0;
    for (const r of ranges) {
      const len = r.nrPages * 4096;
      let at = Number((r.vaddr - base) % BigInt(pattern.length));
      for (let done = 0; done < len; ) {
        const n = Math.min(len - done, pattern.length - at);
        pattern.copy(dest, off + done, at, at + n);
        done += n;
        at = 0;
      }
      off += len;
    }
  },
};

try {
  const t0 = process.hrtime.bigint();
  const plan = await planDump({
    vmas: [{ start: base, end: base + BigInt(pages) * 4096n, prot: 3, flags: 0x22, status: VMA_AREA_REGULAR | VMA_ANON_PRIVATE }],
    pagemap: (_start, n) => new BigUint64Array(n).fill(PME_PRESENT | 0x1000n),
  });
  const t1 = process.hrtime.bigint();
  const stats = await writePagemap({ dir, id: 1, pagesId: 1, entries: plan.entries, source, chunkBytes: chunkMiB << 20 });
  const t2 = process.hrtime.bigint();
  const r = await openPageReader({ dir, id: 1 });
  const buf = Buffer.alloc(chunkMiB << 20);
  let readBytes = 0;
  for (const s of r.segments()) {
    for (let done = 0; done < s.nrPages; ) {
      const n = Math.min(s.nrPages - done, buf.length / 4096);
      r.read(s.vaddr + BigInt(done) * 4096n, buf.subarray(0, n * 4096));
      readBytes += n * 4096;
      done += n;
    }
  }
  r.close();
  const t3 = process.hrtime.bigint();
  const sec = (a, b) => Number(b - a) / 1e9;
  // Baseline on the same filesystem and moment: plain 8 MiB writes of the same amount.
  const raw = Buffer.alloc(8 << 20, 0x5a);
  const fh = await open(join(dir, 'raw'), 'w');
  const t4 = process.hrtime.bigint();
  for (let done = 0; done < mib << 20; done += raw.length) await fh.write(raw);
  await fh.close();
  const rawSec = sec(t4, process.hrtime.bigint());
  const size = statSync(join(dir, 'pages-1.img')).size;
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  const out = {
    mib,
    chunkMiB,
    entries: plan.entries.length,
    planSeconds: +sec(t0, t1).toFixed(3),
    writeSeconds: +sec(t1, t2).toFixed(3),
    writeMiBps: +(stats.bytesWritten / 1048576 / sec(t1, t2)).toFixed(0),
    readMiBps: +(readBytes / 1048576 / sec(t2, t3)).toFixed(0),
    rawWriteMiBps: +(mib / rawSec).toFixed(0),
    pagesImageBytes: size,
    peakRssMiB: +rssMiB.toFixed(1),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  if (size !== mib << 20 || readBytes !== size) {
    process.stderr.write('bench: size mismatch\n');
    process.exitCode = 1;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
