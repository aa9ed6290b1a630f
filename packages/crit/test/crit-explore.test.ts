import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { tarFiles } from '../src/archive.js';
import { ImageDir, type CritImage, type ImageLoader } from '../src/image-dir.js';
import { collectView, renderView, viewJson, humanBytes, renderTree, type TreeNode } from '../src/explore/index.js';
import { exploreDir } from '../src/x.js';
import { parseJson } from '../src/index.js';
import { criuFixtures, referenceCritUsable } from '@crtools/common/testing';

const fixtures = criuFixtures();
const debianCrit = '/usr/bin/crit';
const haveRef = referenceCritUsable() && existsSync(fixtures);

/**
 * A loader that decodes images with Debian's crit 3.17 (a real, independent decoder), so the
 * explorers are checked against CRIU's own `crit x` on the very same decoded data.
 */
const debianText = new Map<string, string>(); // each image decoded once (a python start-up per decode)
const debianLoader: ImageLoader = async (dir, file) => {
  const p = path.join(dir, file);
  if (!existsSync(p)) throw Object.assign(new Error(`${p}: missing`), { code: 'ENOENT' });
  let out = debianText.get(p);
  if (out === undefined) {
    out = execFileSync('/usr/bin/python3', [debianCrit, 'decode', '-i', p], { encoding: 'utf8', maxBuffer: 1 << 28 });
    debianText.set(p, out);
  }
  return parseJson(out) as unknown as CritImage;
};

function collect(): { w: Writable; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  });
  return { w, text: () => chunks.join('') };
}

const DIRS = ['sleep', 'pattern', 'threads', 'pipetree', 'shloop'];

// each case starts Debian's crit (python) once per image: seconds on a loaded machine
describe.skipIf(!haveRef)("crit x views print what CRIU's crit prints (fixtures, Debian crit 3.17 as reference)", { timeout: 60_000 }, () => {
  for (const dir of DIRS) {
    for (const view of ['ps', 'fds', 'mems', 'rss'] as const) {
      it(`${dir} ${view}`, async () => {
        const d = path.join(fixtures, dir);
        const expected = execFileSync('/usr/bin/python3', [debianCrit, 'x', d, view], { encoding: 'utf8' });
        const o = collect();
        const rc = await exploreDir(d, view, o.w, { loader: debianLoader });
        expect(rc).toBe(0);
        expect(o.text()).toBe(expected);
      });
    }
  }
});

describe.skipIf(!haveRef)('crit x extensions on the fixtures', () => {
  it('tree: pipetree is a parent with two children, memory and files per task', async () => {
    const d = new ImageDir(path.join(fixtures, 'pipetree'), debianLoader);
    const roots = (await collectView(d, 'tree')) as TreeNode[];
    expect(roots).toHaveLength(1);
    const r = roots[0]!;
    expect(r.pid).toBe(2806);
    expect(r.children.map((c) => c.pid)).toEqual([2810, 2811]);
    expect(r.comm).toBe('pipetree');
    expect(r.files.map((f) => f.fd)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.files[3]!.file).toMatch(/^pipe\[\d+\]$/);
    expect(r.memory.vmas).toBe(23);
    expect(r.memory.mapped_bytes).toBeGreaterThan(0n);
    const text = renderTree(roots);
    expect(text.split('\n')[0]).toBe('pipetree (pid 2806, pgid 2806, sid 2806, 1 thread)');
    expect(text).toContain('└── pipetree (pid 2811');
  }, 30_000); // runs Debian's crit (Python) once per image: slow on a loaded machine

  it('threads: one task with 5 threads', async () => {
    const d = new ImageDir(path.join(fixtures, 'threads'), debianLoader);
    const roots = (await collectView(d, 'tree')) as TreeNode[];
    expect(roots[0]!.threads).toHaveLength(5);
  });

  it('sk: the fixtures hold no sockets, and say so per task', async () => {
    const d = new ImageDir(path.join(fixtures, 'shloop'), debianLoader);
    const data = await collectView(d, 'sk');
    expect(renderView('sk', data)).toBe('2926\n\t(no sockets)\n2929\n\t(no sockets)\n');
  });

  it('--format json writes addresses as hex strings', async () => {
    const o = collect();
    await exploreDir(path.join(fixtures, 'sleep'), 'mems', o.w, { loader: debianLoader, format: 'json' });
    const j = JSON.parse(o.text());
    expect(j[0].pid).toBe(2680);
    const vs = j[0].vmas.find((v: { name: string }) => v.name.includes('[vsyscall]'));
    expect(vs.start).toBe('0xffffffffff600000');
    expect(j[0].exe).toBe('/usr/bin/sleep');
  });
});

describe('crit x input checks', () => {
  it('rejects unknown views and missing directories with one clear error', async () => {
    const o = collect();
    await expect(exploreDir('/nonexistent-crit-dir', 'ps', o.w)).rejects.toMatchObject({ exitCode: 3, message: '/nonexistent-crit-dir: no such directory' });
    await expect(exploreDir('/tmp', 'nope', o.w)).rejects.toMatchObject({ exitCode: 2 });
  });
  it('humanBytes', () => {
    expect(humanBytes(512n)).toBe('512 B');
    expect(humanBytes(1536n)).toBe('1.5 KiB');
    expect(humanBytes(8n << 20n)).toBe('8.0 MiB');
  });
  it('viewJson turns bigints into hex only for addresses', () => {
    expect(JSON.parse(viewJson([{ start: 4096n, pages: 3n }]))).toEqual([{ start: '0x1000', pages: 3 }]);
  });
});

describe('crit x of a checkpoint archive (podman checkpoint --export)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'crit-archive-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A podman-shaped archive of a fixture: checkpoint/ with the images, the container's files beside. */
  function podmanArchive(dir: string, out: string, tarArgs: string[] = ['-z']): string {
    const stage = mkdtempSync(path.join(work, 'stage-'));
    mkdirSync(path.join(stage, 'checkpoint'));
    for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(stage, 'checkpoint', f));
    writeFileSync(path.join(stage, 'config.dump'), '{"id":"c0ffee"}');
    writeFileSync(path.join(stage, 'spec.dump'), '{"ociVersion":"1.0.2"}');
    writeFileSync(path.join(stage, 'rootfs-diff.tar'), Buffer.alloc(1024));
    const archive = path.join(work, out);
    execFileSync('tar', ['-c', ...tarArgs, '-f', archive, '-C', stage, '.']);
    return archive;
  }

  it.skipIf(!existsSync(fixtures))('every view of an archive is the view of its directory (gzip, zstd or none)', async () => {
    for (const name of ['sleep', 'pipetree']) {
      const dir = path.join(fixtures, name);
      const gz = podmanArchive(dir, `${name}.tar.gz`);
      const plain = podmanArchive(dir, `${name}.tar`, ['--format=pax']);
      const zst = podmanArchive(dir, `${name}.tar.zst`, ['--zstd']);
      for (const view of ['ps', 'fds', 'mems', 'rss', 'sk', 'tree']) {
        const want = collect();
        await exploreDir(dir, view, want.w);
        expect(want.text().length).toBeGreaterThan(0);
        for (const archive of [gz, plain, zst]) {
          const got = collect();
          expect(await exploreDir(archive, view, got.w)).toBe(0);
          expect(got.text(), `${name} ${view} ${archive}`).toBe(want.text());
        }
      }
    }
  });

  it('reads GNU long names and pax paths, and keeps only regular files', () => {
    const stage = mkdtempSync(path.join(work, 'names-'));
    const long = `${'d'.repeat(120)}`;
    mkdirSync(path.join(stage, 'checkpoint', long), { recursive: true });
    writeFileSync(path.join(stage, 'checkpoint', long, 'f.img'), 'deep');
    writeFileSync(path.join(stage, 'checkpoint', 'core-1.img'), 'core');
    symlinkSync('core-1.img', path.join(stage, 'checkpoint', 'link.img'));
    for (const format of ['gnu', 'pax']) {
      const archive = path.join(work, `names-${format}.tar`);
      execFileSync('tar', ['-c', `--format=${format}`, '-f', archive, '-C', stage, '.']);
      const files = tarFiles(readFileSync(archive), archive);
      expect([...files.keys()].sort()).toEqual(['checkpoint/core-1.img', `checkpoint/${long}/f.img`]);
      expect(files.get('checkpoint/core-1.img')!.toString()).toBe('core');
    }
  });

  it('a file that is no archive, one cut short, one without images: one clear error each', async () => {
    const o = collect();
    const junk = path.join(work, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(2048, 7));
    await expect(exploreDir(junk, 'ps', o.w)).rejects.toMatchObject({ code: 'CRIT_ARCHIVE', exitCode: 3, message: `${junk}: not a tar archive (bad header checksum at offset 0)` });
    const tiny = path.join(work, 'tiny');
    writeFileSync(tiny, 'hostname\n');
    await expect(exploreDir(tiny, 'ps', o.w)).rejects.toMatchObject({ code: 'CRIT_ARCHIVE', message: `${tiny}: not a tar archive (9 bytes, less than one header)` });
    const stage = mkdtempSync(path.join(work, 'cut-'));
    writeFileSync(path.join(stage, 'core-1.img'), Buffer.alloc(5000, 1));
    const whole = path.join(work, 'whole.tar');
    execFileSync('tar', ['-c', '-f', whole, '-C', stage, '.']);
    const cut = path.join(work, 'cut.tar');
    writeFileSync(cut, readFileSync(whole).subarray(0, 3 * 512));
    await expect(exploreDir(cut, 'ps', o.w)).rejects.toMatchObject({ code: 'CRIT_ARCHIVE', message: expect.stringMatching(/tar archive cut short/) });
    const noImages = path.join(work, 'none.tar.gz');
    writeFileSync(path.join(stage, 'core-1.img'), 'x');
    execFileSync('tar', ['-c', '-z', '-f', noImages, '-C', stage, '--exclude', '*.img', '.']);
    await expect(exploreDir(noImages, 'ps', o.w)).rejects.toMatchObject({ code: 'CRIT_ARCHIVE', message: expect.stringMatching(/no checkpoint images in the archive/) });
    const badGz = path.join(work, 'bad.tar.gz');
    writeFileSync(badGz, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    await expect(exploreDir(badGz, 'ps', o.w)).rejects.toMatchObject({ code: 'CRIT_ARCHIVE', message: expect.stringMatching(/not a gzip file/) });
  });
});
