import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectVmas, parseMaps, toHex, VMA } from './lib.js';

/**
 * CRIU 4.2 on this kernel logged each smaps header it handled (dump.log) and
 * wrote the resulting VMA list to mm-PID.img. golden/criu42-vmas.fixture.json
 * holds both, per task, for every fixture in the shared fixtures' criu-4.2 folder
 * (the images decoded with Debian's crit). Our classification of the same
 * lines must give CRIU's start, end, pgoff, prot, flags and status.
 */
interface Pair {
  image: string;
  maps: string[];
  vmas: { start: string; end: string; pgoff: string; prot: number; flags: number; status: number; shmid?: string }[];
}
const fixtures = JSON.parse(readFileSync(join(import.meta.dirname, 'golden', 'criu42-vmas.fixture.json'), 'utf8')) as Record<string, Pair[]>;

describe('classification matches CRIU 4.2 images', () => {
  for (const [name, pairs] of Object.entries(fixtures)) {
    for (const p of pairs) {
      it(`${name}/${p.image}: ${p.maps.length} areas`, () => {
        const vmas = collectVmas(parseMaps(p.maps.join('\n') + '\n', { path: `${name}/dump.log` }));
        const got = vmas.map((v) => ({ start: toHex(v.start), end: toHex(v.end), pgoff: toHex(v.pgoff), prot: v.prot, flags: v.flags, status: v.status }));
        const want = p.vmas.map((v) => ({ start: v.start, end: v.end, pgoff: v.pgoff, prot: v.prot, flags: v.flags, status: v.status }));
        expect(got).toEqual(want);
        // the [vvar]+[vvar_vclock] pair became one VVAR area
        expect(p.maps.some((l) => l.endsWith('[vvar_vclock]'))).toBe(true);
        expect(vmas.filter((v) => (v.status & VMA.AREA_VVAR) !== 0)).toHaveLength(1);
      });
    }
  }
});

describe('stack guard gap', () => {
  const p = fixtures.sleep![0]!;
  const text = p.maps.join('\n') + '\n';
  it('default (false) keeps the kernel start of [stack], as CRIU 4.2 recorded it on this kernel', () => {
    const stack = parseMaps(text).find((v) => v.name === '[stack]')!;
    const img = p.vmas.find((v) => (v.flags & 0x100) !== 0)!;
    expect(toHex(stack.start)).toBe(img.start);
    expect(stack.guardGap).toBeUndefined();
  });
  it('stackGuardGapHidden moves a grows-down area one page down when the page below is free', () => {
    const stack = parseMaps(text, { stackGuardGapHidden: true }).find((v) => v.name === '[stack]')!;
    const img = p.vmas.find((v) => (v.flags & 0x100) !== 0)!;
    expect(stack.start).toBe(BigInt(img.start) - 4096n);
    expect(stack.guardGap).toBe(true);
  });
  it('does not move it when the previous area ends right below', () => {
    const t = '7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n7f0000001000-7f0000002000 rw-p 00000000 00:00 0                          [stack]\n';
    const [, s] = parseMaps(t, { stackGuardGapHidden: true });
    expect(s!.start).toBe(0x7f0000001000n);
  });
});
