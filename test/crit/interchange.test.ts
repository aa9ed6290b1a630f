/**
 * crit JSON interchange with CRIU's crit (Debian's crit 3.17 as the live reference), on every
 * image of the CRIU 4.2 fixtures:
 * - our `decode` text == Debian's `decode` text (compact and --pretty), 64-bit values exact;
 * - Debian's `encode` of our `decode --pretty` == the original bytes;
 * - our `encode` of Debian's `decode` == the original bytes;
 * - our decode → our encode == the original bytes (every kind, including the exceptions).
 *
 * The kinds compared against Debian are those Debian's crit itself round-trips byte for byte
 * on these fixtures (found by trying: decode → encode → cmp). Exceptions, with the reason:
 * - core, inventory, pagemap: CRIU 4.2 writes fields that crit 3.17's schemas do not know
 *   (core: thread_core.cg_set = 16, creds.cap_amb = 19; inventory: plugins_entry = 12,
 *   dump_criu_run_id = 13; pagemap: nr_pages = 5). Debian drops them on decode, so its JSON
 *   differs from ours and its re-encoded image is shorter. For these we check instead that
 *   Debian's JSON, encoded by us and by Debian, gives the same bytes, and that our own
 *   round trip is exact.
 * - pages-N.img: raw data (no magic); neither crit decodes it (ours explains what it is).
 *
 * Our side runs in this process through @crtools/crit (hundreds of calls; a Node start-up each
 * would be most of this file's time); the bin is checked to write the same bytes, one image of
 * each kind.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianAsync as debian, debianDecode, fixtureImages, haveDebianCrit, haveFixtures, kindOf, ours as oursBin, oursInProcess as ours } from './helpers.js';

const DEBIAN_ROUND_TRIPS = new Set(['fdinfo', 'files', 'fs', 'ids', 'mm', 'pipes-data', 'pstree', 'seccomp', 'timens']);
const NEWER_THAN_DEBIAN = new Set(['core', 'inventory', 'pagemap']);
const RAW = new Set(['pages']);

const tmp = mkdtempSync(path.join(tmpdir(), 'crit-interchange-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const images = fixtureImages();

describe.skipIf(!haveFixtures)('fixture kinds are all accounted for', () => {
  it('every fixture kind is either compared with Debian, a stated exception, or raw', () => {
    const kinds = new Set(images.map(([, f]) => kindOf(f)));
    for (const k of kinds) expect(DEBIAN_ROUND_TRIPS.has(k) || NEWER_THAN_DEBIAN.has(k) || RAW.has(k), k).toBe(true);
  });
});

describe.skipIf(!haveFixtures).concurrent('our decode → our encode is byte-identical (all non-raw fixture images)', () => {
  for (const [dir, file, p] of images) {
    if (RAW.has(kindOf(file))) continue;
    it(`${dir}/${file}`, async () => {
      const orig = readFileSync(p);
      for (const pretty of [false, true]) {
        const dec = await ours(['decode', '-i', p, ...(pretty ? ['--pretty'] : [])]);
        expect(dec.stderr).toBe('');
        expect(dec.code).toBe(0);
        const enc = await ours(['encode'], dec.stdout);
        expect(enc.stderr).toBe('');
        expect(enc.code).toBe(0);
        expect(Buffer.compare(enc.stdout, orig)).toBe(0);
      }
    });
  }
});

// concurrent: Debian's crit is a python start-up per call, and the machine has two CPUs
describe.skipIf(!haveFixtures || !haveDebianCrit).concurrent("interchange with CRIU's crit (Debian crit 3.17)", () => {
  for (const [dir, file, p] of images) {
    const kind = kindOf(file);
    if (DEBIAN_ROUND_TRIPS.has(kind)) {
      it(`${dir}/${file}: same JSON both ways, and each encodes the other's JSON to the original bytes`, async () => {
        const orig = readFileSync(p);
        for (const pretty of [false, true]) {
          const flag = pretty ? ['--pretty'] : [];
          const mine = await ours(['decode', '-i', p, ...flag]);
          const theirs = await debianDecode(p, pretty);
          expect(theirs.code).toBe(0);
          expect(mine.code).toBe(0);
          expect(mine.stdout.toString()).toBe(theirs.stdout.toString());
          // Debian encodes what we wrote
          const j = path.join(tmp, `${dir}-${file}-${pretty}.json`);
          const b = path.join(tmp, `${dir}-${file}-${pretty}.bin`);
          writeFileSync(j, mine.stdout);
          const denc = await debian(['encode', '-i', j, '-o', b]);
          expect(denc.code, denc.stderr).toBe(0);
          expect(Buffer.compare(readFileSync(b), orig)).toBe(0);
          // we encode what Debian wrote
          const oenc = await ours(['encode'], theirs.stdout);
          expect(oenc.code, oenc.stderr).toBe(0);
          expect(Buffer.compare(oenc.stdout, orig)).toBe(0);
        }
      });
    } else if (kind === 'pagemap') {
      it(`${dir}/${file}: Debian's pagemap JSON (3.17 field names) is refused with one line naming compat_nr_pages`, async () => {
        const theirs = await debianDecode(p);
        expect(theirs.code).toBe(0);
        const r = await ours(['encode'], theirs.stdout);
        expect(r.code).toBe(3);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/entries\[1\]\.compat_nr_pages: required field/);
        // Debian reads our re-encoded image exactly as it reads the original
        const re = await ours(['encode'], (await ours(['decode', '-i', p])).stdout);
        const b2 = path.join(tmp, `${dir}-${file}-ours.bin`);
        writeFileSync(b2, re.stdout);
        expect((await debian(['decode', '-i', b2])).stdout.toString()).toBe(theirs.stdout.toString());
      });
    } else if (NEWER_THAN_DEBIAN.has(kind)) {
      it(`${dir}/${file}: Debian's (older-schema) JSON encodes to the same bytes with us as with Debian`, async () => {
        for (const pretty of [false, true]) {
          const theirs = await debianDecode(p, pretty);
          expect(theirs.code).toBe(0);
          const j = path.join(tmp, `${dir}-${file}-${pretty}.json`);
          const b = path.join(tmp, `${dir}-${file}-${pretty}.bin`);
          writeFileSync(j, theirs.stdout);
          expect((await debian(['encode', '-i', j, '-o', b])).code).toBe(0);
          const oenc = await ours(['encode', '-i', j]);
          expect(oenc.code, oenc.stderr).toBe(0);
          expect(Buffer.compare(oenc.stdout, readFileSync(b))).toBe(0);
        }
        // and Debian reads our re-encoded image exactly as it reads the original
        const mine = await ours(['decode', '-i', p]);
        const re = await ours(['encode'], mine.stdout);
        const b2 = path.join(tmp, `${dir}-${file}-ours.bin`);
        writeFileSync(b2, re.stdout);
        expect((await debian(['decode', '-i', b2])).stdout.toString()).toBe((await debianDecode(p)).stdout.toString());
      });
    }
  }
});

describe.skipIf(!haveFixtures)('the crit bin writes what the library does (one image of each kind)', () => {
  const firstOfKind = new Map<string, string>();
  for (const [, file, p] of images) if (!RAW.has(kindOf(file)) && !firstOfKind.has(kindOf(file))) firstOfKind.set(kindOf(file), p);
  for (const [kind, p] of firstOfKind) {
    it(kind, async () => {
      for (const pretty of [false, true]) {
        const args = ['decode', '-i', p, ...(pretty ? ['--pretty'] : [])];
        const bin = oursBin(args);
        const lib = await ours(args);
        expect(bin.stderr).toBe('');
        expect(bin.code).toBe(0);
        expect(Buffer.compare(bin.stdout, lib.stdout)).toBe(0);
        const enc = oursBin(['encode'], bin.stdout);
        expect(enc.code, enc.stderr).toBe(0);
        expect(Buffer.compare(enc.stdout, (await ours(['encode'], bin.stdout)).stdout)).toBe(0);
      }
    });
  }
  it('an encode error is the same line from the bin and the library', async () => {
    const bad = '{"magic": "PSTREE", "entries": [{"pid": "x"}]}';
    const bin = oursBin(['encode'], bad);
    const lib = await ours(['encode'], bad);
    expect(bin.code).toBe(3);
    expect(lib).toMatchObject({ code: bin.code, stderr: bin.stderr });
  });
});

describe.skipIf(!haveFixtures)('decode writes to -o without a trailing newline, like crit', () => {
  it('sleep/pstree.img', () => {
    const [, , p] = images.find(([d, f]) => d === 'sleep' && f === 'pstree.img')!;
    const o = path.join(tmp, 'pstree.json');
    const r = oursBin(['decode', '-i', p, '-o', o]);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
    const text = readFileSync(o, 'utf8');
    expect(text.endsWith('}')).toBe(true);
    expect(oursBin(['decode', '-i', p]).stdout.toString()).toBe(text + '\n');
    const sh = oursBin(['show', p]);
    expect(sh.stdout.toString()).toBe(oursBin(['decode', '--pretty', '-i', p]).stdout.toString());
  });
});
