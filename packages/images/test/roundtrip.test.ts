import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createImageWriter, decodeImage, encodeImage, openImage, readImageFile, writeImageFile } from '../src/index.js';
import { fixtureImages, fixturesRoot } from './helpers/fixtures.js';

const images = fixtureImages();
const tmp = mkdtempSync(join(tmpdir(), 'images-rt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(images.length === 0)(`fixture round trip (${fixturesRoot})`, () => {
  it('covers every protobuf kind the fixtures hold', () => {
    const kinds = new Set(images.map((i) => i.kind));
    expect([...kinds].sort()).toEqual(['CORE', 'FDINFO', 'FILES', 'FS', 'IDS', 'INVENTORY', 'MM', 'PAGEMAP', 'PIPES_DATA', 'PSTREE', 'SECCOMP', 'STATS', 'TIMENS']);
  });

  for (const img of images) {
    it(`${img.label}: decode → encode is byte-identical`, async () => {
      const buf = readFileSync(img.path);
      const decoded = decodeImage(buf, { file: img.path });
      expect(decoded.magic).toBe(img.kind);
      expect(decoded.entries.length).toBeGreaterThan(0);
      expect(encodeImage(decoded).equals(buf)).toBe(true);

      // Streaming reader, with tiny chunks to cross every boundary, gives the same entries.
      const streamed = [];
      for await (const e of openImage(img.path, { chunkSize: 7 })) streamed.push(e);
      expect(streamed).toEqual(decoded.entries);
      const fromStream = [];
      for await (const e of openImage(Readable.from([buf.subarray(0, 5), buf.subarray(5)]), { file: img.label })) fromStream.push(e);
      expect(fromStream).toEqual(decoded.entries);

      // Streaming writer and whole-file writer produce the same bytes.
      const out1 = join(tmp, `w-${img.label.replace('/', '-')}`);
      const w = createImageWriter(out1, decoded.magic);
      for (const e of decoded.entries) await w.write(e);
      await w.close();
      expect(readFileSync(out1).equals(buf)).toBe(true);
      const out2 = `${out1}.2`;
      await writeImageFile(out2, await readImageFile(img.path), { fsync: true, atomic: true });
      expect(readFileSync(out2).equals(buf)).toBe(true);
    });
  }
});

describe.skipIf(images.length === 0)('entry representation', () => {
  it('keeps 64-bit values exact as bigint, 32-bit as number, enums as names, bytes as Buffer', async () => {
    const core = images.find((i) => i.label === 'pattern/core-2716.img') ?? images.find((i) => i.kind === 'CORE')!;
    const e = (await readImageFile(core.path)).entries[0] as any;
    expect(e.mtype).toBe('X86_64');
    expect(typeof e.thread_info.gpregs.ip).toBe('bigint');
    expect(typeof e.thread_info.gpregs.mode).toBe('string');
    expect(typeof e.tc.exit_code).toBe('number');
    // rax of a task stopped in a syscall is -ERESTART… : a u64 above 2^53 must survive exactly
    const big = [e.thread_info.gpregs.ax, e.thread_info.gpregs.bx].filter((v: bigint) => v > 2n ** 53n);
    for (const v of big) expect(v.toString()).toMatch(/^\d{17,20}$/);
    const mm = images.find((i) => i.kind === 'MM')!;
    const m = (await readImageFile(mm.path)).entries[0] as any;
    const vsys = m.vmas.find((v: any) => v.start === 0xffffffffff600000n);
    if (vsys) expect(vsys.end).toBe(0xffffffffff601000n);
    const files = images.find((i) => i.kind === 'FILES')!;
    const f = (await readImageFile(files.path)).entries[0] as any;
    expect(f.type).toBe('REG');
    expect(Array.isArray(f.reg.build_id)).toBe(true);
  });

  it('PIPES_DATA entries carry their payload as a Buffer sized by `bytes`', async () => {
    const p = images.find((i) => i.kind === 'PIPES_DATA')!;
    for (const e of (await readImageFile(p.path)).entries) {
      expect(Buffer.isBuffer(e.extra)).toBe(true);
      expect(e.extra!.length).toBe(e['bytes']);
    }
  });

  it('writes payloads and re-reads them (pipes-data with 3 bytes)', async () => {
    const path = join(tmp, 'pipes-data.img');
    await writeImageFile(path, { magic: 'PIPES_DATA', entries: [{ pipe_id: 5, bytes: 3, size: 4096, extra: Buffer.from('abc') }, { pipe_id: 6, bytes: 0 }] });
    const back = await readImageFile(path);
    expect(back.entries[0]!.extra!.toString()).toBe('abc');
    expect(back.entries[1]!.extra!.length).toBe(0);
    expect(readFileSync(path).subarray(0, 8).toString('hex')).toBe('1943565409374556');
  });
});

describe.skipIf(images.length === 0)('streaming reader lifecycle', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  it('closes the file when iteration ends, breaks early or fails', async () => {
    const core = images.find((i) => i.kind === 'CORE')!;
    const pm = images.find((i) => i.kind === 'PAGEMAP')!;
    const before = openFds();
    for (let k = 0; k < 20; k++) {
      for await (const _ of openImage(pm.path)) break;
      let n = 0;
      for await (const _ of openImage(pm.path, { chunkSize: 16 })) n++;
      expect(n).toBeGreaterThan(1);
      await expect((async () => {
        for await (const _ of openImage(core.path, { name: 'MM' }));
      })()).rejects.toMatchObject({ code: 'IMG_BAD_MAGIC' });
      const s = openImage(core.path);
      expect((await s.header()).name).toBe('CORE');
      await s.close();
      await expect(openImage(core.path, { name: 'FS' }).header()).rejects.toMatchObject({ code: 'IMG_BAD_MAGIC' });
    }
    expect(openFds()).toBeLessThanOrEqual(before);
  });
});
