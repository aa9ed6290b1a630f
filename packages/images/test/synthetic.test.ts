import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, encodeImage, fromCritJson, magicByName, MAGICS, messageSpec, parseJsonExact, pyDump, toCritJson } from '../src/index.js';
import { critDecodeAll, debianCritAvailable, debianCritKinds, debianPython, debianSchema } from './helpers/fixtures.js';
import { sampleImages } from './helpers/synth.js';
import { through317 } from './helpers/through317.js';
import { execFileSync } from 'node:child_process';

const samples = sampleImages();
const tmp = mkdtempSync(join(tmpdir(), 'images-synth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('synthetic images of every kind (all fields set, payloads)', () => {
  it('cover every protobuf kind of the magic table', () => {
    const covered = new Set(samples.map((s) => s.magic));
    expect(MAGICS.filter((m) => m.message !== null && !covered.has(m.name)).map((m) => m.name)).toEqual([]);
  });

  for (const s of samples) {
    it(`${s.label}: encode → decode gives the entries back, re-encode is identical, crit JSON round-trips`, () => {
      const bytes = encodeImage(s);
      const back = decodeImage(bytes);
      expect(back.magic).toBe(s.magic);
      expect(back.entries).toEqual(s.entries);
      expect(encodeImage(back).equals(bytes)).toBe(true);
      for (const pretty of [false, true]) expect(encodeImage(fromCritJson(toCritJson(back, { pretty }))).equals(bytes)).toBe(true);
    });
  }
});

const haveCrit = debianCritAvailable();
describe.skipIf(!haveCrit)("synthetic images against Debian's crit 3.17", () => {
  const deb = haveCrit ? debianSchema() : {};
  // 3.17's crit has no handler for SIGNAL, BINFMT_MISC and PIDFD (4.x): nothing to compare there
  const handled = new Set(haveCrit ? debianCritKinds() : []);
  // crit (3.17 and 4.2 alike) always reads an IPCNS_SHM payload, but CRIU writes none when
  // in_pagemaps is set: crit misreads such images, so they cannot be compared
  const known = samples.filter((s) => handled.has(s.magic) && s.label !== 'IPCNS_SHM (in pagemaps)');
  it('Debian crit handles all kinds but SIGNAL, BINFMT_MISC and PIDFD', () => {
    expect(samples.filter((s) => !handled.has(s.magic)).map((s) => s.magic).sort()).toEqual(['BINFMT_MISC', 'PIDFD', 'SIGNAL']);
  });
  const paths = known.map((s, i) => {
    const p = join(tmp, `s${i}.img`);
    writeFileSync(p, encodeImage(s));
    return p;
  });
  const expected = haveCrit ? critDecodeAll(paths, tmp) : new Map<string, string>();

  it("our magic table agrees with 3.17's magic.py on every kind it knows", () => {
    const theirs = JSON.parse(execFileSync(debianPython, ['-c', 'import json, pycriu.images.magic as m; print(json.dumps(m.by_name))']).toString());
    for (const [name, value] of Object.entries(theirs as Record<string, number>)) {
      if (name === 'IMG_COMMON') expect(value).toBe(0x54564319);
      else if (name === 'IMG_SERVICE') expect(value).toBe(0x55105940);
      else if (name === 'CRTOOLS_IMAGES_V1_1') continue;
      else expect(magicByName(name)?.magic).toBe(value);
    }
  });

  known.forEach((s, i) => {
    it(`${s.label}: toCritJson equals crit decode (through 3.17's schema), plain and --pretty`, () => {
      const image = decodeImage(encodeImage(s));
      const spec = messageSpec(magicByName(s.magic)!.message!);
      for (const pretty of [false, true]) {
        const theirs = expected.get(`${paths[i]}|${pretty}`)!;
        const mine = toCritJson(image, { pretty });
        const { v, changed } = through317(parseJsonExact(mine), spec, deb);
        expect(changed ? pyDump(v, pretty ? '    ' : null) : mine).toBe(theirs);
        if (!changed) expect(encodeImage(fromCritJson(theirs)).equals(encodeImage(s))).toBe(true);
      }
    });
  });
});
