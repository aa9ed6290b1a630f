import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readFileSync, rmSync, utimesSync, writeFileSync, writeSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { readImageFile, writeImageFile } from '@crtools/images';
import { readFds } from '@crtools/procfs';
import { FileTable } from '../../dump/table.js';
import { FilePlanTable } from '../../plan/table.js';
import { RegPlans } from './plan.js';

describe('reg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-reg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an open file: dumped by path, flags, offset and size; planned again; unlinked ones kept as ghosts', async () => {
    const kept = join(dir, 'kept.txt');
    const gone = join(dir, 'gone.txt');
    writeFileSync(kept, 'abc');
    writeFileSync(gone, 'contents of an unlinked file');
    const fds = [openSync(kept, 'r'), openSync(gone, 'r')];
    const child = spawn('sleep', ['30'], { stdio: ['ignore', fds[0], fds[1]] });
    fds.forEach((fd) => closeSync(fd));
    try {
      await new Promise((r) => child.once('spawn', r));
      rmSync(gone);
      const table = new FileTable();
      const recs = readFds(child.pid!).filter((r) => r.fd === 1 || r.fd === 2);
      const ids = recs.map((r) => Number(table.fd(child.pid!, r)!.id));
      const images = join(dir, 'images');
      mkdirSync(images);
      for (const im of table.images()) await writeImageFile(join(images, im.file), { magic: im.magic, entries: im.entries });
      const plans = await FilePlanTable.load(images);
      const [a, b] = ids.map((id) => plans.files[plans.index(id, 'fd', child.pid!)]!);
      expect(a).toMatchObject({ kind: 'reg', path: kept, size: 3n });
      expect(b).toMatchObject({ kind: 'reg', path: gone, ghost: 0 });
      const g = plans.ghosts[0]!;
      expect(g).toMatchObject({ size: 28n, contents: [{ off: 0n, len: 28 }], mode: 0o100644 });
      expect(readFileSync(g.image).subarray(g.contents[0]!.at, g.contents[0]!.at + 28).toString()).toBe('contents of an unlinked file');
    } finally {
      process.kill(child.pid!, 'SIGKILL');
    }
  });

  it('a larger unlinked file is kept in chunks, one per data extent, its holes left out; planned with where each chunk lies', async () => {
    const gone = join(dir, 'sparse.bin');
    const fd0 = openSync(gone, 'w+', 0o604);
    ftruncateSync(fd0, 1 << 20);
    writeSync(fd0, Buffer.alloc(4096, 'x'), 0, 4096, 0);
    writeSync(fd0, Buffer.alloc(8192, 'y'), 0, 8192, 512 << 10);
    closeSync(fd0);
    utimesSync(gone, 1_000_000_000, 1_100_000_000);
    const fd = openSync(gone, 'r');
    const child = spawn('sleep', ['30'], { stdio: ['ignore', fd, 'ignore'] });
    closeSync(fd);
    try {
      await new Promise((r) => child.once('spawn', r));
      rmSync(gone);
      const table = new FileTable();
      const rec = readFds(child.pid!).find((r) => r.fd === 1)!;
      const id = Number(table.fd(child.pid!, rec)!.id);
      const images = join(dir, 'images-sparse');
      mkdirSync(images);
      for (const im of table.images()) await writeImageFile(join(images, im.file), { magic: im.magic, entries: im.entries });
      const img = await readImageFile(join(images, 'ghost-file-1.img'));
      expect(img.entries[0]).toMatchObject({ chunks: true, size: 1n << 20n, mode: 0o100604, atim: { tv_sec: 1_000_000_000n, tv_usec: 0n }, mtim: { tv_sec: 1_100_000_000n, tv_usec: 0n } });
      const chunks = img.entries.slice(1).map((e) => [e['off'], e['len'], e.extra!.toString('latin1').replace(/(.)\1*/g, '$1')]);
      if (chunks.length !== 1) expect(chunks).toEqual([[0n, 4096n, 'x'], [512n << 10n, 8192n, 'y']]); // (one chunk: no SEEK_DATA here)
      const plans = await FilePlanTable.load(images);
      expect(plans.files[plans.index(id, 'fd', child.pid!)]).toMatchObject({ kind: 'reg', path: gone, ghost: 0 });
      const g = plans.ghosts[0]!;
      expect(g).toMatchObject({ size: 1n << 20n, mode: 0o100604, times: { atime: { sec: 1_000_000_000n, nsec: 0 }, mtime: { sec: 1_100_000_000n, nsec: 0 } } });
      expect(g.contents.map((c) => [c.off, c.len])).toEqual(img.entries.slice(1).map((e) => [e['off'], Number(e['len'])]));
    } finally {
      process.kill(child.pid!, 'SIGKILL');
    }
  });

  it('an unlinked device node is a ghost with its device number: a /dev/null-like one planned to be made again, another refused by name (exit 4)', async () => {
    const fown = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };
    const images = async (name: string, mode: number, rdev: number): Promise<string> => {
      const at = join(dir, `images-${name}`);
      mkdirSync(at);
      await writeImageFile(join(at, 'files.img'), { magic: 'FILES', entries: [{ type: 'REG', id: 1, reg: { id: 1, flags: 2, pos: 0n, fown, name: `/gone/${name}`, mode } }] });
      await writeImageFile(join(at, 'remap-fpath.img'), { magic: 'REMAP_FPATH', entries: [{ orig_id: 1, remap_id: 1, remap_type: 'GHOST' }] });
      await writeImageFile(join(at, 'ghost-file-1.img'), { magic: 'GHOST_FILE', entries: [{ uid: 0, gid: 0, mode, dev: 0, ino: 1n, rdev }] });
      return at;
    };
    const plans = await FilePlanTable.load(await images('null', 0o20640, 0x103));
    expect(plans.ghosts[0]).toMatchObject({ path: '/gone/null', mode: 0o20640, rdev: 0x103, contents: [] });
    let err: unknown;
    try {
      await FilePlanTable.load(await images('sda', 0o60660, 0x800));
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(4);
    expect(String((err as Error).message)).toMatch(/the unlinked file \/gone\/sda is a device node other than \/dev\/null-like ones \(block 8:0\)/);
  });

  it('a file that changed size since the dump is refused (exit 1), naming it', () => {
    const f = join(dir, 'grown.txt');
    writeFileSync(f, 'abc');
    appendFileSync(f, 'def');
    let err: unknown;
    try {
      new RegPlans().plan({ name: f, size: 3n, flags: 0 }, { id: 1, what: 'pid 7 fd 3', pid: 7, index: 0 });
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(1);
    expect((err as Error).message).toBe(`pid 7 fd 3: file ${f} changed size (6, recorded 3)`);
  });

  it("a file whose mode changed is refused (CRIU's bad mode); --skip-file-rwx-check lets only the rwx bits differ", () => {
    const f = join(dir, 'moded.txt');
    writeFileSync(f, 'abc');
    chmodSync(f, 0o640);
    const plan = (skip: boolean, mode: number) => {
      const k = new RegPlans();
      k.skipRwxCheck = skip;
      return () => k.plan({ name: f, size: 3n, mode, flags: 0 }, { id: 1, what: 'pid 7 fd 3', pid: 7, index: 0 });
    };
    expect(plan(false, 0o100640)()).toMatchObject({ path: f });
    expect(plan(false, 0o100644)).toThrow(`pid 7 fd 3: file ${f} has mode 0100640, recorded 0100644 (--skip-file-rwx-check lets the rwx bits differ)`);
    expect(plan(true, 0o100644)()).toMatchObject({ path: f });
    // the type and the setuid/setgid/sticky bits are held to the record all the same
    expect(plan(true, 0o104640)).toThrow(`file ${f} has mode 0100640, recorded 0104640`);
    expect(plan(true, 0o040640)).toThrow(`file ${f} has mode 0100640, recorded 040640`);
  });
});
