/**
 * crit x and crit info through the real bin, on the CRIU 4.2 fixtures.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../lib/paths.js';
import { FIXTURE_DIRS, debian, fixtureImages, haveDebianCrit, haveFixtures, kindOf, ours, oursInProcess } from './helpers.js';

describe.skipIf(!haveFixtures || !haveDebianCrit)("x ps/fds/mems/rss print exactly what CRIU's crit prints", () => {
  for (const d of FIXTURE_DIRS) {
    for (const view of ['ps', 'fds', 'mems']) {
      it(`${d} ${view}`, () => {
        const dir = path.join(fixturesDir, d);
        const mine = ours(['x', dir, view]);
        expect(mine.stderr).toBe('');
        expect(mine.code).toBe(0);
        expect(mine.stdout.toString()).toBe(debian(['x', dir, view]).stdout.toString());
      });
    }
    it(`${d} rss: same pagemap entries as crit; page counts from nr_pages (crit 3.17 reads only the old 32-bit field, 0 in CRIU 4.2 images)`, () => {
      const dir = path.join(fixturesDir, d);
      const entryLines = (t: string) => t.split('\n').filter((l) => /^(\d+$|\t[0-9a-f]+ \/ )/.test(l));
      const mine = entryLines(ours(['x', dir, 'rss']).stdout.toString());
      const theirs = entryLines(debian(['x', dir, 'rss']).stdout.toString());
      const vaddrs = (ls: string[]) => ls.map((l) => l.split(' / ')[0]);
      expect(vaddrs(mine)).toEqual(vaddrs(theirs));
      // the counts add up to the size of the task's pages image(s) for a one-task dump
      if (d === 'pattern' || d === 'sleep' || d === 'threads') {
        const sum = mine.slice(1).reduce((a, l) => a + Number(l.split(' / ')[1]!.trim().split(/\s+/)[0]), 0);
        expect(sum).toBe(readFileSync(path.join(dir, 'pages-1.img')).length / 4096);
      }
    });
  }
});

describe.skipIf(!haveFixtures)('x extensions', () => {
  it('tree of pipetree: root and two children with memory and files', () => {
    const r = ours(['x', path.join(fixturesDir, 'pipetree'), 'tree']);
    expect(r.code).toBe(0);
    const t = r.stdout.toString();
    expect(t.split('\n')[0]).toBe('pipetree (pid 2806, pgid 2806, sid 2806, 1 thread)');
    expect(t).toMatch(/├── pipetree \(pid 2810/);
    expect(t).toMatch(/└── pipetree \(pid 2811/);
    expect(t).toMatch(/memory: .* mapped in 23 VMAs, \d+ pages dumped/);
    expect(t).toMatch(/files: 9 open, cwd \/tmp\/criu-fixtures\/run, root \//);
  });

  it('tree --format json: pages dumped agree with the pattern workload (8 MiB of touched memory)', () => {
    const r = ours(['x', path.join(fixturesDir, 'pattern'), 'tree', '--format', 'json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.toString());
    expect(j).toHaveLength(1);
    expect(j[0].memory.dumped_pages).toBeGreaterThanOrEqual(2048);
    expect(j[0].memory.dumped_bytes).toBe(j[0].memory.dumped_pages * 4096);
    // pages dumped == size of pages-N.img named by the pagemap head
    const pages = readFileSync(path.join(fixturesDir, 'pattern', 'pages-1.img')).length / 4096;
    expect(j[0].memory.dumped_pages).toBe(pages);
  });

  for (const view of ['ps', 'fds', 'mems', 'rss', 'sk', 'tree']) {
    it(`x shloop ${view} --format json is valid JSON, one record per task`, () => {
      const r = ours(['x', path.join(fixturesDir, 'shloop'), view, '--format', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout.toString());
      expect(Array.isArray(j)).toBe(true);
      if (view !== 'tree') expect(j.map((t: { pid: number }) => t.pid)).toEqual([2926, 2929]);
    });
  }

  it('mems names every file mapping (exe and libraries) in text and JSON', () => {
    const r = ours(['x', path.join(fixturesDir, 'sleep'), 'mems', '--format', 'json']);
    const j = JSON.parse(r.stdout.toString());
    const fileVmas = j[0].vmas.filter((v: { status: number }) => v.status & 0xc0);
    expect(fileVmas.length).toBeGreaterThan(0);
    for (const v of fileVmas) expect(v.file).toMatch(/^\//);
  });
});

describe.skipIf(!haveFixtures)('info counts entries as decode shows them', () => {
  for (const [dir, file, p] of fixtureImages()) {
    if (kindOf(file) === 'pages') continue;
    it(`${dir}/${file}`, async () => {
      const r = ours(['info', p]);
      expect(r.code, r.stderr).toBe(0);
      const info = JSON.parse(r.stdout.toString());
      // (decode in this process: interchange.test.ts checks the bin writes the same)
      const dec = JSON.parse((await oursInProcess(['decode', '-i', p])).stdout.toString());
      expect(info.magic).toBe(dec.magic);
      expect(info.count).toBe(dec.entries.length - (dec.magic === 'PAGEMAP' ? 1 : 0));
      // crit's layout: indent 4, newline at the end
      expect(r.stdout.toString()).toBe(`{\n    "magic": "${info.magic}",\n    "count": ${info.count}\n}\n`);
    });
  }
  it.skipIf(!haveDebianCrit)('pipes-data.img (entries with payload): Debian crit 3.17 crashes, we count right', () => {
    const p = path.join(fixturesDir, 'pipetree', 'pipes-data.img');
    expect(debian(['info', p]).code).not.toBe(0);
    const dec = JSON.parse(debian(['decode', '-i', p]).stdout.toString());
    expect(JSON.parse(ours(['info', p]).stdout.toString()).count).toBe(dec.entries.length);
  });
});
