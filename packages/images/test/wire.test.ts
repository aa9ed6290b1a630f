import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createImageWriter, decodeImage, decodeMessage, encodeImage, encodeMessage, messageSpec, toCritJson, UNKNOWN_FIELDS } from '../src/index.js';

const hdr = (magic: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0x54564319, 0);
  b.writeUInt32LE(magic, 4);
  return b;
};
const framed = (magic: number, ...bodies: Buffer[]) =>
  Buffer.concat([hdr(magic), ...bodies.flatMap((b) => {
    const l = Buffer.alloc(4);
    l.writeUInt32LE(b.length);
    return [l, b];
  })]);

describe('protobuf wire details', () => {
  it('keeps unknown fields, re-emits them, and leaves them out of crit JSON (as crit does)', () => {
    // fs_entry {cwd_id=1, root_id=2, umask=3} + unknown field 15 (varint 300) + unknown field 16 (bytes "hi")
    const body = Buffer.from([0x08, 1, 0x10, 2, 0x18, 3, 0x78, 0xac, 0x02, 0x82, 0x01, 2, 0x68, 0x69]);
    const img = decodeImage(framed(0x51403912, body));
    const e = img.entries[0]!;
    expect(e).toEqual({ cwd_id: 1, root_id: 2, umask: 3 });
    expect((e as any)[UNKNOWN_FIELDS].map((b: Buffer) => b.toString('hex'))).toEqual(['78ac02', '82010268 69'.replace(' ', '')]);
    expect(encodeImage(img).equals(framed(0x51403912, body))).toBe(true);
    expect(toCritJson(img)).toBe('{"magic": "FS", "entries": [{"cwd_id": 1, "root_id": 2, "umask": 3}]}');
  });

  it('reads packed repeated scalars although CRIU writes them unpacked', () => {
    const spec = messageSpec('pstree_entry');
    // pid=1 ppid=0 pgid=1 sid=1, threads (field 5) packed: [7, 300]
    const m = decodeMessage(spec, Buffer.from([0x08, 1, 0x10, 0, 0x18, 1, 0x20, 1, 0x2a, 3, 7, 0xac, 0x02]));
    expect(m['threads']).toEqual([7, 300]);
    // we write them unpacked, as protobuf-c does for proto2
    expect(encodeMessage(spec, m).toString('hex')).toBe('08011000180120012807' + '28ac02');
  });

  it('encodes negative int32 as 10-byte varints and sint as zigzag, and reads them back', () => {
    const core = messageSpec('task_core_entry');
    const tc = { task_state: 1, exit_code: 0, personality: 0, flags: 0, blk_sigset: 0n, comm: 'x', oom_score_adj: -1 };
    const bytes = encodeMessage(core, tc);
    expect(bytes.includes(Buffer.from('ffffffffffffffffff01', 'hex'))).toBe(true);
    expect(decodeMessage(core, bytes)).toMatchObject({ oom_score_adj: -1 });
    const vma = messageSpec('vma_entry');
    const v = { start: 0xffffffffff600000n, end: 0xffffffffff601000n, pgoff: 0n, shmid: 0n, prot: 5, flags: 0x22, status: 0x205, fd: -1n };
    const vb = encodeMessage(vma, v);
    expect(decodeMessage(vma, vb)).toEqual(v);
    expect(vb.includes(Buffer.from([0x40, 0x01]))).toBe(true); // sint64 -1 → zigzag 1
  });

  it('streams into a Writable with the same bytes as encodeImage', async () => {
    const entries = Array.from({ length: 5000 }, (_, i) => ({ id: i, flags: 0, type: 'REG', fd: i }));
    const chunks: Buffer[] = [];
    const sink = new Writable({
      highWaterMark: 1024,
      write(chunk, _enc, cb) {
        chunks.push(chunk);
        setImmediate(cb);
      },
    });
    const w = createImageWriter(sink, 'FDINFO');
    for (const e of entries) await w.write(e);
    await w.close();
    expect(Buffer.concat(chunks).equals(encodeImage({ magic: 'FDINFO', entries }))).toBe(true);
    const pt = new PassThrough();
    const w2 = createImageWriter(pt, 'FDINFO');
    const got: Buffer[] = [];
    pt.on('data', (c) => got.push(c));
    await w2.write(entries[0]!);
    await w2.close();
    expect(Buffer.concat(got).equals(encodeImage({ magic: 'FDINFO', entries: [entries[0]!] }))).toBe(true);
  });

  it('writes the service magic for STATS and a single magic for INVENTORY', () => {
    expect(encodeImage({ magic: 'STATS', entries: [] }).toString('hex')).toBe('4059105506330957');
    expect(encodeImage({ magic: 'INVENTORY', entries: [] }).toString('hex')).toBe('16313158');
  });
});
