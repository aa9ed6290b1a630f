import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError, ExitCode } from '@crtools/common';
import { createImageWriter, decodeImage, encodeImage, fromCritJson, openImage, readImageFile, writeImageFile } from '../src/index.js';
import { fixtureImages, fixturesRoot } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const hdr = (magic: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0x54564319, 0);
  b.writeUInt32LE(magic, 4);
  return b;
};
const FS = 0x51403912;
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
// fs entry: cwd_id=12 root_id=13 umask=18
const fsEntry = Buffer.from([0x08, 12, 0x10, 13, 0x18, 18]);

function caught(fn: () => unknown): any {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

async function caughtAsync(fn: () => Promise<unknown>): Promise<any> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

// [name, bytes, code, exact message (file "x.img")]
const golden: [string, Buffer, string, string][] = [
  ['empty file', Buffer.alloc(0), 'IMG_TRUNCATED', 'x.img at byte 0: empty file, no magic'],
  ['3 bytes', Buffer.from([0x19, 0x43, 0x56]), 'IMG_TRUNCATED', 'x.img at byte 0: file is 3 bytes, too short for a magic'],
  ['common magic only', hdr(FS).subarray(0, 4), 'IMG_TRUNCATED', 'x.img at byte 4: file ends after the first magic word'],
  ['unknown magic', Buffer.concat([hdr(0xdeadbeef)]), 'IMG_BAD_MAGIC', 'x.img at byte 4: unknown magic 0xdeadbeef (a raw image such as pages-*.img has no magic)'],
  ['unknown single magic', u32(0x12345678), 'IMG_BAD_MAGIC', 'x.img at byte 0: unknown magic 0x12345678 (a raw image such as pages-*.img has no magic)'],
  ['KDAT is not protobuf', hdr(0x57023458), 'IMG_BAD_MAGIC', 'x.img at byte 4: KDAT is not a protobuf image'],
  ['partial length prefix', Buffer.concat([hdr(FS), Buffer.from([6, 0])]), 'IMG_TRUNCATED', 'x.img at byte 8: 2 stray bytes where an entry length was expected'],
  ['entry past EOF', Buffer.concat([hdr(FS), u32(6), fsEntry.subarray(0, 5)]), 'IMG_TRUNCATED', 'x.img at byte 8: entry 0 length 6 runs past the end of the file (5 bytes left)'],
  ['4 GiB length prefix', Buffer.concat([hdr(FS), u32(0xffffffff), fsEntry]), 'IMG_BAD_ENTRY', 'x.img at byte 8: entry 0 length 4294967295 is over the 268435456 bytes an entry may have'],
  ['garbage protobuf', Buffer.concat([hdr(FS), u32(3), Buffer.from([0xff, 0xff, 0xff])]), 'IMG_BAD_ENTRY', 'x.img at byte 15: entry 0 (fs_entry, 3 bytes at 8): varint runs past the end of the message'],
  ['invalid wire type', Buffer.concat([hdr(FS), u32(2), Buffer.from([0x0f, 0x00])]), 'IMG_BAD_ENTRY', 'x.img at byte 13: entry 0 (fs_entry, 2 bytes at 8): invalid wire type 7'],
  ['missing required field', Buffer.concat([hdr(FS), u32(2), Buffer.from([0x08, 1])]), 'IMG_BAD_ENTRY', 'x.img at byte 14: entry 0 (fs_entry, 2 bytes at 8): fs_entry: required field root_id is missing'],
  ['nested length past message', Buffer.concat([hdr(0x58313116).subarray(4), u32(4), Buffer.from([0x08, 2, 0x1a, 9])]), 'IMG_BAD_ENTRY', 'x.img at byte 12: entry 0 (inventory_entry, 4 bytes at 4): length 9 runs past the end of the message'],
  ['pipe payload past EOF', Buffer.concat([hdr(0x56453709), u32(4), Buffer.from([0x08, 1, 0x10, 10]), Buffer.from('abc')]), 'IMG_TRUNCATED', 'x.img at byte 16: entry 0 payload of 10 bytes runs past the end of the file (3 bytes left)'],
];

describe('malformed images (golden)', () => {
  for (const [name, bytes, code, message] of golden) {
    it(`${name} → ${code}`, async () => {
      const e = caught(() => decodeImage(bytes, { file: 'x.img' }));
      expect(isCrtoolsError(e)).toBe(true);
      expect(e.code).toBe(code);
      expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(e.message).toBe(message);
      expect(e.message).not.toContain('\n');
      // the streaming reader fails the same way (it may only call a huge prefix BAD_ENTRY early)
      const path = join(tmp, 'x.img');
      writeFileSync(path, bytes);
      const s = await caughtAsync(async () => {
        for await (const _ of openImage(path, { chunkSize: 3 }));
      });
      expect(isCrtoolsError(s)).toBe(true);
      expect(s.code).toBe(code);
      expect(s.message).toContain(path);
    });
  }

  it('a 4 GiB length prefix is refused before reading on (streaming) and never allocated', async () => {
    const path = join(tmp, 'huge.img');
    writeFileSync(path, Buffer.concat([hdr(FS), u32(0xfffffff0), Buffer.alloc(64 * 1024)]));
    const before = process.memoryUsage().arrayBuffers;
    const e = await caughtAsync(async () => {
      for await (const _ of openImage(path));
    });
    expect(e.code).toBe('IMG_BAD_ENTRY');
    expect(e.message).toBe(`${path} at byte 8: entry 0 length 4294967280 is over the 268435456 bytes an entry may have`);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('wrong kind for { name } → IMG_BAD_MAGIC', () => {
    const e = caught(() => decodeImage(Buffer.concat([hdr(FS), u32(6), fsEntry]), { name: 'CORE', file: 'fs-1.img' }));
    expect(e.code).toBe('IMG_BAD_MAGIC');
    expect(e.message).toBe('fs-1.img at byte 4: expected a CORE image, found FS');
  });

  it.skipIf(fixtureImages().length === 0)('a raw pages image is refused with IMG_BAD_MAGIC', async () => {
    const e = await caughtAsync(() => readImageFile(join(fixturesRoot, 'sleep', 'pages-1.img')));
    expect(e.code).toBe('IMG_BAD_MAGIC');
    expect(e.message).toMatch(/pages-1\.img at byte \d: unknown magic 0x[0-9a-f]+/);
  });

  it('a missing file surfaces as the fs error (ENOENT), not a format error', async () => {
    const e = await caughtAsync(() => readImageFile(join(tmp, 'nope.img')));
    expect(e.code).toBe('ENOENT');
  });
});

describe('wrong-shaped input for encode (golden)', () => {
  const cases: [string, unknown, string][] = [
    ['not an object', 42, '<image>: expected an object'],
    ['unknown kind', { magic: 'NOPE', entries: [] }, 'magic: unknown image kind "NOPE"'],
    ['entries not an array', { magic: 'FS', entries: {} }, 'entries: expected an array'],
    ['unknown field', { magic: 'FS', entries: [{ cwd_id: 1, root_id: 2, bogus: 1 }] }, 'entries[0].bogus: no field bogus in fs_entry'],
    ['missing required', { magic: 'FS', entries: [{ cwd_id: 1 }] }, 'entries[0].root_id: required field root_id of fs_entry is missing'],
    ['string for an int', { magic: 'FS', entries: [{ cwd_id: '1', root_id: 2 }] }, 'entries[0].cwd_id: expected an integer in [0, 4294967295], got string'],
    ['u32 out of range', { magic: 'FS', entries: [{ cwd_id: -1, root_id: 2 }] }, 'entries[0].cwd_id: expected an integer in [0, 4294967295], got number -1'],
    ['u64 out of range', { magic: 'PAGEMAP', entries: [{ pages_id: 1 }, { vaddr: 1n << 64n, compat_nr_pages: 0 }] }, 'entries[1].vaddr: 18446744073709551616 is out of range for a unsigned 64-bit field'],
    ['unsafe number for u64', { magic: 'PAGEMAP', entries: [{ pages_id: 1 }, { vaddr: 2 ** 60, compat_nr_pages: 0 }] }, 'entries[1].vaddr: expected a 64-bit integer (bigint), got number'],
    ['unknown enum', { magic: 'FDINFO', entries: [{ id: 1, flags: 0, type: 'NOPE', fd: 0 }] }, 'entries[0].type: unknown enum name "NOPE"'],
    ['nested not an object', { magic: 'INVENTORY', entries: [{ img_version: 2, root_ids: 5 }] }, 'entries[0].root_ids: expected an object (task_kobj_ids_entry), got number'],
    ['repeated not an array', { magic: 'PSTREE', entries: [{ pid: 1, ppid: 0, pgid: 1, sid: 1, threads: 1 }] }, 'entries[0].threads: expected an array, got number'],
    ['element of a repeated field', { magic: 'PSTREE', entries: [{ pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 'x'] }] }, 'entries[0].threads[1]: expected an integer in [0, 4294967295], got string'],
    ['field of a message in a repeated field', { magic: 'CORE', entries: [{ mtype: 'X86_64', tc: { task_state: 1, exit_code: 0, personality: 0, flags: 0, blk_sigset: 0n, comm: 'a', sigactions: [{ sigaction: 0n, flags: 0n, restorer: 0n, mask: 0n }, { sigaction: 'q' }] } }] }, 'entries[0].tc.sigactions[1].sigaction: expected a 64-bit integer (bigint), got string'],
    ['payload size mismatch', { magic: 'PIPES_DATA', entries: [{ pipe_id: 1, bytes: 4, extra: Buffer.from('ab') }] }, 'entries[0].extra: payload is 2 bytes but the entry says 4'],
    ['payload on a kind without one', { magic: 'FS', entries: [{ cwd_id: 1, root_id: 2, extra: Buffer.from('ab') }] }, 'entries[0].extra: FS entries carry no payload'],
  ];
  for (const [name, image, message] of cases) {
    it(name, () => {
      const e = caught(() => encodeImage(image as any));
      expect(isCrtoolsError(e)).toBe(true);
      expect(e.code).toBe('JSON_BAD_SHAPE');
      expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(e.message).toBe(message);
    });
  }

  it('writers name the file and do not write a partial entry', async () => {
    const path = join(tmp, 'fs-9.img');
    const w = createImageWriter(path, 'FS');
    await w.write({ cwd_id: 1, root_id: 2 });
    const e = await caughtAsync(() => w.write({ cwd_id: 1 }));
    expect(e.message).toBe(`${path}: entries[1].root_id: required field root_id of fs_entry is missing`);
    await w.close();
    expect(decodeImage(readFileSync(path)).entries).toEqual([{ cwd_id: 1, root_id: 2 }]);
    const e2 = await caughtAsync(() => writeImageFile(path, { magic: 'FS', entries: [{ root_id: 1 }] }));
    expect(e2.code).toBe('JSON_BAD_SHAPE');
  });
});

describe('wrong-shaped crit JSON (golden)', () => {
  const cases: [string, string, string, string][] = [
    ['not JSON', '{"magic": "FS", ', 'JSON_SYNTAX', 'in.json at byte 16: invalid JSON: expecting property name enclosed in double quotes'],
    ['trailing garbage', '{"magic": "FS", "entries": []} x', 'JSON_SYNTAX', 'in.json at byte 31: invalid JSON: extra data after the JSON document'],
    ['not an object', '[1, 2]', 'JSON_BAD_SHAPE', 'in.json: <document>: expected an object with "magic" and "entries", got an array'],
    ['magic missing', '{"entries": []}', 'JSON_BAD_SHAPE', 'in.json: magic: expected a string, got undefined undefined'],
    ['unknown magic', '{"magic": "PAGES", "entries": []}', 'JSON_BAD_SHAPE', 'in.json: magic: unknown image kind "PAGES"'],
    ['bad hex string', '{"magic": "FS", "entries": [{"cwd_id": "0xZZ", "root_id": 1}]}', 'JSON_BAD_SHAPE', 'in.json: entries[0].cwd_id: cannot read the string "0xZZ" as an integer'],
    ['float for an int', '{"magic": "FS", "entries": [{"cwd_id": 1.5, "root_id": 1}]}', 'JSON_BAD_SHAPE', 'in.json: entries[0].cwd_id: expected an integer, got number 1.5'],
    ['bad base64', '{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 1, "extra": "!!"}]}', 'JSON_BAD_SHAPE', 'in.json: entries[0].extra: not base64'],
    ['bad flags', '{"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": 1, "compat_nr_pages": 0, "flags": "PE_NOPE"}]}', 'JSON_BAD_SHAPE', 'in.json: entries[1].flags: cannot read the string "PE_NOPE" as an integer'],
    ['payload on a kind without one', '{"magic": "FS", "entries": [{"cwd_id": 1, "root_id": 1, "extra": ""}]}', 'JSON_BAD_SHAPE', 'in.json: entries[0].extra: FS entries carry no payload'],
  ];
  for (const [name, text, code, message] of cases) {
    it(name, () => {
      const e = caught(() => encodeImage(fromCritJson(text, { file: 'in.json' })));
      expect(isCrtoolsError(e)).toBe(true);
      expect(e.code).toBe(code);
      expect(e.message).toBe(message);
    });
  }
});

describe('integers beyond 2^53 in crit JSON', () => {
  const text = '{"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": 18446744073699065857, "compat_nr_pages": 0}]}';
  it('are exact when JSON text is given', () => {
    expect(fromCritJson(text).entries[1]!['vaddr']).toBe(18446744073699065857n);
  });
  it('are refused in an already parsed value (JSON.parse lost the digits)', () => {
    const e = caught(() => fromCritJson(JSON.parse(text)));
    expect(e.code).toBe('JSON_BAD_SHAPE');
    expect(e.message).toBe('entries[1].vaddr: integer beyond 2^53 in a parsed JSON value (its digits are lost): pass the JSON text');
  });
  it('a float beyond 2^53 in an integer field is a shape error', () => {
    const e = caught(() => fromCritJson('{"magic": "FS", "entries": [{"cwd_id": 1e300, "root_id": 1}]}', { file: 'in.json' }));
    expect(e.code).toBe('JSON_BAD_SHAPE');
    expect(e.message).toBe('in.json: entries[0].cwd_id: not an exact integer (a float beyond 2^53)');
  });
});
