import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageFileName, MAGICS, openImageDir, parseImageFileName } from '../src/index.js';
import { fixturesRoot, fixtureImages } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-dir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('image file names', () => {
  it.each([
    ['core-2716.img', 'CORE', 2716, false],
    ['pagemap-2716.img', 'PAGEMAP', 2716, false],
    ['pagemap-shmem-77.img', 'PAGEMAP', 77, false],
    ['pages-1.img', 'PAGES', 1, true],
    ['pages-shmem-3.img', 'PAGES', 3, true],
    ['ghost-file-1f.img', 'GHOST_FILE', 31, false],
    ['tcp-stream-a0.img', 'TCP_STREAM', 160, false],
    ['netns-ct-5.img', 'NETNF_CT', 5, true],
    ['netns-5.img', 'NETNS', 5, false],
    ['tmpfs-dev-9.tar.gz.img', 'TMPFS_DEV', 9, true],
    ['tmpfs-9.tar.gz.img', 'TMPFS_IMG', 9, true],
    ['signal-p-12.img', 'SIGNAL', 12, false],
    ['inventory.img', 'INVENTORY', undefined, false],
    ['stats-dump', 'STATS', 'dump', false],
    ['binfmt-misc.img', 'BINFMT_MISC', undefined, false],
    ['ipcns-var-11.img', 'IPC_VAR', 11, false],
  ])('%s → %s %s', (file, kind, id, raw) => {
    expect(parseImageFileName(file)).toMatchObject({ file, kind, id, raw });
  });

  it('ignores names that are not images', () => {
    for (const f of ['dump.log', 'core-x.img', 'core-1.img.bak', 'parent', 'pagemap-.img']) expect(parseImageFileName(f)).toBeUndefined();
  });

  it('names every kind with an id, and parses the name back', () => {
    for (const m of MAGICS) {
      if (m.files.length === 0) continue;
      const id = m.files[0]!.includes('%s') ? 'dump' : m.files[0]!.includes('%') ? 42 : undefined;
      const name = imageFileName(m.name, id);
      expect(parseImageFileName(name)).toMatchObject({ kind: m.name, id });
    }
    expect(imageFileName('GHOST_FILE', 255)).toBe('ghost-file-ff.img');
  });
});

describe.skipIf(fixtureImages().length === 0)('image directories', () => {
  const src = join(fixturesRoot, 'pipetree');

  it('lists and finds the images of a CRIU dump', async () => {
    const dir = openImageDir(src);
    const all = await dir.list();
    const expected = readdirSync(src).filter((f) => parseImageFileName(f));
    expect(all.map((e) => e.file).sort()).toEqual(expected.sort());
    expect((await dir.find('CORE')).map((e) => e.id)).toEqual([2806, 2810, 2811]);
    expect((await dir.find('PAGES')).every((e) => e.raw)).toBe(true);
    expect(dir.pathOf('MM', 2810)).toBe(join(src, 'mm-2810.img'));
    expect(await dir.get('MM', 2810)).toMatchObject({ file: 'mm-2810.img', kind: 'MM', id: 2810 });
    expect(await dir.get('MM', 1)).toBeUndefined();
    expect((await dir.read('PSTREE')).entries.map((e) => e['pid'])).toEqual([2806, 2810, 2811]);
    await expect(dir.read('CORE', 1)).rejects.toMatchObject({ code: 'ENOENT' });
    const inv = await dir.inventory();
    expect(inv['img_version']).toBe(2);
    expect(await dir.parent()).toBeNull();
  });

  it('follows the parent link of an incremental dump, and stops at loops', async () => {
    const base = join(tmp, 'chain');
    for (const d of ['1', '2', '3']) {
      mkdirSync(join(base, d), { recursive: true });
      copyFileSync(join(src, 'inventory.img'), join(base, d, 'inventory.img'));
    }
    symlinkSync('../1', join(base, '2', 'parent'));
    symlinkSync(join(base, '2'), join(base, '3', 'parent'));
    const chain = await openImageDir(join(base, '3')).chain();
    expect(chain.map((d) => d.path)).toEqual([join(base, '3'), join(base, '2'), join(base, '1')]);
    symlinkSync('../3', join(base, '1', 'parent'));
    expect((await openImageDir(join(base, '3')).chain()).length).toBe(3);
    mkdirSync(join(base, '4'));
    symlinkSync('../missing', join(base, '4', 'parent'));
    await expect(openImageDir(join(base, '4')).parent()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a bad inventory as a format error', async () => {
    const d = join(tmp, 'badinv');
    mkdirSync(d);
    writeFileSync(join(d, 'inventory.img'), Buffer.from([1, 2, 3]));
    await expect(openImageDir(d).inventory()).rejects.toMatchObject({ code: 'IMG_TRUNCATED' });
  });
});
