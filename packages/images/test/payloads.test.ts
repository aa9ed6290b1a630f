/** Payloads streamed into an image (PayloadSource) and located rather than read (locateEntries). */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createImageWriter, encodeImage, filePayload, locateEntries, payloadSource, readImageFile, writeImageFile } from '../src/index.js';
import { critDecode, debianCritAvailable } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-payloads-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const head = { uid: 0, gid: 0, mode: 0o100604, dev: 2049, ino: 77n, atim: { tv_sec: 1000n, tv_usec: 5n }, mtim: { tv_sec: 2000n, tv_usec: 6n } };
/** a source file: 'a' × 5000 at 0, 'b' × 3000 at 10000 (as the chunks copy it) */
const src = join(tmp, 'src');
writeFileSync(src, Buffer.concat([Buffer.alloc(5000, 'a'), Buffer.alloc(5000), Buffer.alloc(3000, 'b')]));

describe('PayloadSource', () => {
  it('a chunked ghost image written from a file in small pieces equals the one encoded from buffers', async () => {
    const fd = openSync(src, 'r');
    const path = join(tmp, 'ghost-file-1.img');
    try {
      await writeImageFile(path, {
        magic: 'GHOST_FILE',
        entries: [
          { ...head, chunks: true, size: 13000n },
          { len: 5000n, off: 0n, extra: filePayload(fd, 0, 5000, 1024) },
          { len: 3000n, off: 10000n, extra: filePayload(fd, 10000, 3000, 1000) },
        ],
      });
    } finally {
      closeSync(fd);
    }
    const whole = encodeImage({
      magic: 'GHOST_FILE',
      entries: [{ ...head, chunks: true, size: 13000n }, { len: 5000n, off: 0n, extra: Buffer.alloc(5000, 'a') }, { len: 3000n, off: 10000n, extra: Buffer.alloc(3000, 'b') }],
    });
    expect(readFileSync(path).equals(whole)).toBe(true);
    const back = await readImageFile(path);
    expect(back.entries.map((e) => e.extra?.length)).toEqual([undefined, 5000, 3000]);
  });

  it('a source giving fewer or more bytes than it declared fails the write and leaves no file', async () => {
    for (const give of [10, 30]) {
      const path = join(tmp, `short-${give}.img`);
      const p = writeImageFile(path, { magic: 'GHOST_FILE', entries: [{ ...head, chunks: true, size: 20n }, { len: 20n, off: 0n, extra: payloadSource(20, () => [Buffer.alloc(give)]) }] });
      await expect(p).rejects.toMatchObject({ code: 'IMG_BAD_ENTRY' });
      expect(existsSync(path)).toBe(false);
    }
  });

  it("the declared length must agree with the entry's (len)", async () => {
    const w = createImageWriter(join(tmp, 'bad-len.img'), 'GHOST_FILE');
    await w.write({ ...head, chunks: true, size: 20n });
    await expect(w.write({ len: 20n, off: 0n }, payloadSource(19, () => [Buffer.alloc(19)]))).rejects.toMatchObject({ code: 'JSON_BAD_SHAPE' });
    await w.abort();
  });
});

describe('locateEntries', () => {
  it('decodes the entries of a chunked ghost image and says where each chunk lies', async () => {
    const path = join(tmp, 'ghost-file-1.img');
    const bytes = readFileSync(path);
    const img = await locateEntries(path, { name: 'GHOST_FILE' });
    expect(img.magic).toBe('GHOST_FILE');
    expect(img.entries[0]!.entry).toMatchObject({ chunks: true, size: 13000n });
    expect(img.entries[0]!.payload).toEqual({ offset: img.entries[1]!.offset, length: 0 });
    const chunks = img.entries.slice(1).map(({ entry, payload }) => ({ off: entry['off'], data: bytes.subarray(payload!.offset, payload!.offset + payload!.length) }));
    expect(chunks.map((c) => c.off)).toEqual([0n, 10000n]);
    expect(chunks[0]!.data.equals(Buffer.alloc(5000, 'a'))).toBe(true);
    expect(chunks[1]!.data.equals(Buffer.alloc(3000, 'b'))).toBe(true);
  });

  it('an unchunked ghost image: the contents run from after the entry to the end of the file', async () => {
    const path = join(tmp, 'ghost-file-2.img');
    await writeImageFile(path, { magic: 'GHOST_FILE', entries: [{ ...head, extra: Buffer.from('hello') }] });
    const img = await locateEntries(path);
    expect(img.entries).toHaveLength(1);
    expect(img.entries[0]!.payload).toEqual({ offset: readFileSync(path).length - 5, length: 5 });
  });

  it('kinds without payloads locate none; a truncated payload or a wrong kind is an image error', async () => {
    const reg = join(tmp, 'reg.img');
    await writeImageFile(reg, { magic: 'REG_FILES', entries: [{ id: 1, flags: 0, pos: 0n, fown: { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 }, name: '/x' }] });
    expect((await locateEntries(reg)).entries[0]!.payload).toBeUndefined();
    await expect(locateEntries(reg, { name: 'GHOST_FILE' })).rejects.toMatchObject({ code: 'IMG_BAD_MAGIC' });
    const cut = join(tmp, 'cut.img');
    const whole = readFileSync(join(tmp, 'ghost-file-1.img'));
    writeFileSync(cut, whole.subarray(0, whole.length - 1));
    await expect(locateEntries(cut)).rejects.toMatchObject({ code: 'IMG_TRUNCATED' });
  });
});

describe.skipIf(!debianCritAvailable())("Debian's crit", () => {
  it('decodes the streamed chunked ghost image: each chunk with its bytes as extra', () => {
    const doc = JSON.parse(critDecode(join(tmp, 'ghost-file-1.img'), false));
    expect(doc.magic).toBe('GHOST_FILE');
    expect(doc.entries[0]).toMatchObject({ chunks: true, size: 13000, mode: 0o100604 });
    expect(doc.entries.slice(1).map((e: { off: number; len: number; extra: string }) => [e.off, e.len, Buffer.from(e.extra, 'base64').length])).toEqual([[0, 5000, 5000], [10000, 3000, 3000]]);
  });
});
