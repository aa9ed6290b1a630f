import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pagemapCommand } from '../src/command.js';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { PageServerClient } from '../src/page-server.js';
import { bufferPageSource, writePages } from '../src/writer.js';
import { openPageReader } from '../src/reader.js';
import { fixturesRoot } from '@crtools/common/testing';

const FIX = resolve(fixturesRoot(), 'criu-4.2');
const have = existsSync(join(FIX, 'pattern', 'pagemap-2716.img'));

async function run(...argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (c) => o.push(c));
  err.on('data', (c) => e.push(c));
  const code = await pagemapCommand(argv, out, err);
  return { code, out: Buffer.concat(o), err: Buffer.concat(e).toString() };
}

describe('crtools-pagemap command', () => {
  it.skipIf(!have)('lists entries and segments as JSON Lines and reads raw pages', async () => {
    const dir = join(FIX, 'pattern');
    const ent = await run('entries', '-D', dir, '2716');
    expect(ent.code).toBe(0);
    const lines = ent.out.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(21);
    expect(lines[0]).toEqual({ vaddr: '0x55eead7bc000', nrPages: 1, flags: ['PE_PRESENT'], offset: 0 });
    const seg = await run('segments', '-D', dir, '2716');
    const segs = seg.out.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(segs.reduce((n, s) => n + s.nrPages, 0)).toBe(lines.reduce((n, l) => n + l.nrPages, 0));
    const rd = await run('read', '-D', dir, '2716', '0x7f01fb200000', '2');
    expect(rd.code).toBe(0);
    expect(rd.out.length).toBe(8192);
    expect(rd.out.readBigUInt64LE(8)).toBe(0x9e3779b97f4a7c15n); // word 1 of the pattern
  });

  it('answers bad usage with 2 and bad input with one line and 3', async () => {
    expect((await run()).code).toBe(2);
    expect((await run('entries', '-D', '/nonexistent')).code).toBe(2);
    expect((await run('frobnicate', '-D', '/tmp')).code).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'pagemap-cmd-'));
    try {
      const r = await run('entries', '-D', dir, '123');
      expect(r.code).toBe(3);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain('pagemap-123.img');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('page-server: serves one session on TCP and reports the images it wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagemap-cmd-ps-'));
    try {
      const out = new PassThrough();
      const err = new PassThrough();
      const o: Buffer[] = [];
      out.on('data', (c) => o.push(c));
      const port = new Promise<number>((res) => err.on('data', (c) => {
        const m = /:(\d+)\n/.exec(String(c));
        if (m) res(Number(m[1]));
      }));
      const done = pagemapCommand(['page-server', '-D', dir, '--address', '127.0.0.1', '--port', '0'], out, err);
      const sock = connect(await port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      const client = new PageServerClient(sock);
      const sink = await client.openSink('task', 99);
      const mem = Buffer.alloc(3 * 4096, 0xab);
      await writePages({ sink, source: bufferPageSource(0x1000n, mem), entries: [{ vaddr: 0x1000n, nrPages: 3, flags: 4 }] });
      expect(await client.close()).toBe(0);
      sock.end();
      expect(await done).toBe(0);
      // (closed: the client ended the session with PS_IOV_CLOSE)
      expect(JSON.parse(Buffer.concat(o).toString())).toEqual({ pagemaps: [join(dir, 'pagemap-99.img')], closed: true });
      const r = await openPageReader({ dir, id: 99 });
      const b = Buffer.alloc(3 * 4096);
      r.read(0x1000n, b);
      expect(b.equals(mem)).toBe(true);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const bin = join(__dirname, '..', 'bin', 'crtools-pagemap.js');
  const built = existsSync(join(__dirname, '..', 'dist', 'bin.js'));
  it.skipIf(!built)('the built bin: exit codes, one error line, quiet on a closed pipe (skipped: dist not built)', { timeout: 60_000 }, () => {
    const bad = spawnSync(process.execPath, [bin, 'entries', '-D', '/nonexistent', '1'], { encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(spawnSync(process.execPath, [bin], { encoding: 'utf8' }).status).toBe(2);
    if (have) {
      const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" read -D "${join(FIX, 'pattern')}" 2716 0x7f01fb200000 2048 | head -c 10 >/dev/null`], { encoding: 'utf8' });
      expect(piped.status).toBe(0);
      expect(piped.stderr).toBe('');
    }
  });
});

