import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_LAZY, PE_PARENT, PE_PRESENT, PS_IOV_ADD_F, PS_IOV_OPEN2 } from '../src/constants.js';
import { bufferPageSource, writePagemap, writePages } from '../src/writer.js';
import {
  PageServerClient,
  decodeDstId,
  decodePsIov,
  encodeDstId,
  encodePsCmd,
  encodePsIov,
  servePageServer,
} from '../src/page-server.js';
import type { PlannedEntry } from '../src/plan.js';

const P = 4096;
const BASE = 0x7f1000000000n;
const at = (page: number) => BASE + BigInt(page * P);
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-ps-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function memory(pages: number): Buffer {
  const b = Buffer.alloc(pages * P);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((i * 2246822519) >>> 0, i);
  return b;
}

/** A page server on a unix socket; resolves the session result of the first connection. */
function startServer(dir: string, mode: 'receive' | 'lazy' = 'receive'): Promise<{ path: string; server: Server; session: Promise<{ pagemaps: string[] }> }> {
  const path = join(tmp, `ps-${Math.random().toString(16).slice(2)}.sock`);
  return new Promise((resolve) => {
    let done!: (s: Promise<{ pagemaps: string[] }>) => void;
    const session = new Promise<{ pagemaps: string[] }>((r) => (done = (p) => p.then(r, (e) => r(Promise.reject(e)))));
    const server = createServer((sock: Socket) => {
      done(servePageServer(sock, { dir, chunkBytes: 3 * P, mode }).finally(() => sock.end()));
    });
    server.listen(path, () => resolve({ path, server, session }));
  });
}

describe('page-server wire format', () => {
  it('encodes the 32-byte header as CRIU does', () => {
    const h = encodePsIov({ cmd: encodePsCmd(PS_IOV_ADD_F, PE_PRESENT | PE_LAZY), nrPages: 3n, vaddr: 0x7f01fb200000n, dstId: encodeDstId('task', 2716) });
    expect(h.toString('hex')).toBe(
      '06000600' + '00000000' + '0300000000000000' + '000020fb017f0000' + '019c0a0000000000',
    );
    expect(decodePsIov(h)).toEqual({ cmd: 0x60006, nrPages: 3n, vaddr: 0x7f01fb200000n, dstId: 0xa9c01n });
    expect(decodeDstId(encodeDstId('shmem', 99))).toEqual({ kind: 'shmem', id: 99n });
    expect(decodeDstId((5n << 8n) | 11n)).toEqual({ kind: 'task', id: 5n }); // CRIU 2.x numbering
    expect(decodeDstId(0x1234n | 0x63n)).toBeNull();
  });
});

describe('page server and client', () => {
  it('writes the same images as a local dump', async () => {
    const mem = memory(20);
    const entries: PlannedEntry[] = [
      { vaddr: at(0), nrPages: 5, flags: PE_PRESENT },
      { vaddr: at(8), nrPages: 12, flags: PE_PRESENT | PE_LAZY },
    ];
    const local = mkdtempSync(join(tmp, 'local-'));
    await writePagemap({ dir: local, id: 31, pagesId: 0x10001, entries, source: bufferPageSource(BASE, mem) });

    const remote = mkdtempSync(join(tmp, 'remote-'));
    const { path, server, session } = await startServer(remote);
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    const client = new PageServerClient(sock);
    expect(await client.checkParent('task', 31)).toBe(false);
    const sink = await client.openSink('task', 31);
    expect(sink.hasParent).toBe(false);
    await writePages({ entries, source: bufferPageSource(BASE, mem), sink, chunkBytes: 4 * P });
    await sink.close();
    expect(await client.close()).toBe(0);
    sock.end();
    const res = await session;
    server.close();
    expect(res.pagemaps).toEqual([join(remote, 'pagemap-31.img')]);
    expect(readFileSync(join(remote, 'pagemap-31.img')).equals(readFileSync(join(local, 'pagemap-31.img')))).toBe(true);
    expect(readFileSync(join(remote, 'pages-65537.img')).equals(readFileSync(join(local, 'pages-65537.img')))).toBe(true);
  });

  it('answers has_parent from its images directory and accepts holes', async () => {
    const root = mkdtempSync(join(tmp, 'inc-'));
    mkdirSync(join(root, '1'));
    mkdirSync(join(root, '2'));
    symlinkSync('../1', join(root, '2', 'parent'));
    await writePagemap({ dir: join(root, '1'), id: 8, pagesId: 1, entries: [{ vaddr: at(0), nrPages: 4, flags: PE_PRESENT }], source: bufferPageSource(BASE, memory(4)) });
    const { path, server, session } = await startServer(join(root, '2'));
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    const client = new PageServerClient(sock);
    expect(await client.checkParent('task', 8)).toBe(true);
    const sink = await client.openSink('task', 8);
    expect(sink.hasParent).toBe(true);
    await writePages({ entries: [{ vaddr: at(0), nrPages: 4, flags: PE_PARENT }], source: bufferPageSource(BASE, memory(4)), sink });
    expect(await client.close()).toBe(0);
    sock.end();
    await session;
    server.close();
  });

  it('fails a session that ends without PS_IOV_CLOSE, or sends an unknown command', async () => {
    const dir = mkdtempSync(join(tmp, 'bad-'));
    {
      const { path, server, session } = await startServer(dir);
      const sock = connect(path);
      await new Promise((r) => sock.once('connect', r));
      sock.write(encodePsIov({ cmd: PS_IOV_OPEN2, nrPages: 0n, vaddr: 0n, dstId: encodeDstId('task', 1) }));
      await new Promise((r) => sock.once('data', r)); // has_parent byte
      sock.end();
      await expect(session).rejects.toMatchObject({ code: 'PS_NOT_FLUSHED' });
      server.close();
    }
    {
      const { path, server, session } = await startServer(dir);
      const sock = connect(path);
      await new Promise((r) => sock.once('connect', r));
      sock.write(encodePsIov({ cmd: 0x77, nrPages: 0n, vaddr: 0n, dstId: 0n }));
      await expect(session).rejects.toMatchObject({ code: 'PS_BAD_CMD', exitCode: 3 });
      sock.destroy();
      server.close();
    }
    {
      const { path, server, session } = await startServer(dir);
      const sock = connect(path);
      await new Promise((r) => sock.once('connect', r));
      sock.write(encodePsIov({ cmd: encodePsCmd(PS_IOV_ADD_F, PE_PRESENT), nrPages: 2n, vaddr: at(0), dstId: encodeDstId('task', 2) }));
      sock.end(Buffer.alloc(P)); // one page of two
      await expect(session).rejects.toMatchObject({ code: 'PS_TRUNCATED' });
      server.close();
    }
  });

  it('serves lazy pages with PS_IOV_GET, clamped to the entry', async () => {
    const dir = mkdtempSync(join(tmp, 'lazy-'));
    const mem = memory(10);
    await writePagemap({
      dir, id: 77, pagesId: 1, source: bufferPageSource(BASE, mem),
      entries: [
        { vaddr: at(0), nrPages: 2, flags: PE_PRESENT },
        { vaddr: at(2), nrPages: 6, flags: PE_PRESENT | PE_LAZY },
      ],
    });
    const { path, server, session } = await startServer(dir, 'lazy');
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    const client = new PageServerClient(sock);
    const buf = Buffer.alloc(4 * P);
    expect(await client.getPages(77, at(3), buf)).toBe(4);
    expect(buf.equals(mem.subarray(3 * P, 7 * P))).toBe(true);
    expect(await client.getPages(77, at(6), buf)).toBe(2); // the entry ends at page 8
    expect(buf.subarray(0, 2 * P).equals(mem.subarray(6 * P, 8 * P))).toBe(true);
    sock.end();
    await expect(session).resolves.toEqual({ pagemaps: [], closed: false }); // (the peer hung up without PS_IOV_CLOSE)
    server.close();
  });
});
