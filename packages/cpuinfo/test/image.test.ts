import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CPU_CAP } from '@crtools/common';
import { readImageFile, writeImageFile } from '@crtools/images';
import {
  checkCpuinfoImage, clearFeature, cpuinfoEntry, feature, imageCpuinfo, isCpuinfoError, NCAPINTS_V1, probeCpuinfo, setFeature, validateCpuinfoImage,
  writeCpuinfoImage, type X86Cpuinfo,
} from '../src/index.js';
import { AMD_ZEN2, INTEL_SKX, TURIN_VM, cpuidOf } from './cpus.js';

const root = mkdtempSync(path.join(tmpdir(), 'crtools-cpuinfo-image-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = path.join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const probe = (leaves: Parameters<typeof cpuidOf>[0]): X86Cpuinfo => probeCpuinfo({ cpuid: cpuidOf(leaves) });
const turin = probe(TURIN_VM.leaves);
const skx = probe(INTEL_SKX);
const zen2 = probe(AMD_ZEN2);
const { FPU, INS, CPU, ALL, IMAGE, NONE } = CPU_CAP;

async function rejects(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('cpuinfo.img written and read back', () => {
  it('round-trips every field', async () => {
    for (const c of [turin, skx, zen2]) {
      const d = newDir();
      await writeCpuinfoImage(d, c);
      const img = await readImageFile(path.join(d, 'cpuinfo.img'), { name: 'CPUINFO' });
      expect(img.magic).toBe('CPUINFO');
      expect(imageCpuinfo(img.entries[0] as Record<string, unknown>, turin)).toEqual(c);
      expect(await validateCpuinfoImage(d, ALL, { host: c })).toEqual(c);
    }
  });

  it('CRIU 4.2\'s image of the recorded machine reads as our probe of it', async () => {
    const d = newDir();
    writeFileSync(path.join(d, 'cpuinfo.img'), TURIN_VM.criuImage);
    expect(await validateCpuinfoImage(d, ALL, { host: turin })).toEqual(turin);
  });

  it('needs an existing directory to write into', async () => {
    expect(await rejects(writeCpuinfoImage(path.join(root, 'nope'), turin))).toMatchObject({ code: 'CPUINFO_DIR', exitCode: 1 });
  });
});

describe('imageCpuinfo: what CRIU accepts, and what it fills in', () => {
  const entry = (over: Record<string, unknown>) => ({ x86_entry: [{ ...(cpuinfoEntry(skx).x86_entry[0] as object), ...over }] });

  it('a version 1 image: 12 words, the rest from this CPU', () => {
    const c = imageCpuinfo(entry({ capability_ver: 1, capability: skx.capability.slice(0, NCAPINTS_V1) }), zen2);
    expect(c.capability).toEqual([...skx.capability.slice(0, NCAPINTS_V1), ...zen2.capability.slice(NCAPINTS_V1)]);
  });

  it('no xfeatures_mask nor sizes (older images): this CPU\'s', () => {
    const e = entry({});
    const x = e.x86_entry[0] as Record<string, unknown>;
    delete x['xfeatures_mask'];
    delete x['xsave_size'];
    delete x['xsave_size_max'];
    delete x['model_id'];
    const c = imageCpuinfo(e, zen2);
    expect(c).toMatchObject({ xfeatures_mask: zen2.xfeatures_mask, xsave_size: zen2.xsave_size, xsave_size_max: zen2.xsave_size_max });
    expect(c.model_id).toBeUndefined();
  });

  it.each([
    ['an unknown vendor', { vendor_id: 'UNKNOWN' }, /unknown CPU vendor UNKNOWN/],
    ['an unknown capability version', { capability_ver: 3 }, /unknown capability version 3/],
    ['too few words for version 2', { capability: [1, 2, 3] }, /3 capability words where version 2 has 19/],
    ['version 1 with 19 words', { capability_ver: 1 }, /19 capability words where version 1 has 12/],
  ])('refuses %s', (_, over, msg) => {
    expect(() => imageCpuinfo(entry(over), zen2)).toThrow(expect.objectContaining({ code: 'CPUINFO_BAD_IMAGE', exitCode: 3, message: expect.stringMatching(msg) }));
  });

  it('refuses no x86 entry, or two', () => {
    expect(() => imageCpuinfo({ x86_entry: [] }, zen2)).toThrow(/no x86 cpuinfo in the image \(0 x86 entries, 1 expected\)/);
    expect(() => imageCpuinfo({}, zen2)).toThrow(/0 x86 entries/);
    const two = { x86_entry: [...cpuinfoEntry(skx).x86_entry, ...cpuinfoEntry(skx).x86_entry] };
    expect(() => imageCpuinfo(two, zen2)).toThrow(/2 x86 entries/);
  });
});

describe('validateCpuinfoImage / checkCpuinfoImage', () => {
  it('no cpuinfo.img, or one without an entry: CPUINFO_MISSING', async () => {
    const d = newDir();
    const e = await rejects(validateCpuinfoImage(d, FPU, { host: turin }));
    expect(e).toMatchObject({ code: 'CPUINFO_MISSING', exitCode: 1 });
    expect(e.message).toMatch(/^no cpuinfo image \(.*cpuinfo\.img\): 'criu cpuinfo dump' writes one, so does a dump with --cpu-cap \(a restore with --cpu-cap=none does without\)$/);
    expect(isCpuinfoError(e)).toBe(true);
    await writeImageFile(path.join(d, 'cpuinfo.img'), { magic: 'CPUINFO', entries: [] });
    expect(await rejects(validateCpuinfoImage(d, FPU, { host: turin }))).toMatchObject({ code: 'CPUINFO_MISSING' });
    expect(await rejects(validateCpuinfoImage(path.join(root, 'nope'), FPU, { host: turin }))).toMatchObject({ code: 'CPUINFO_DIR', exitCode: 1 });
  });

  it('a mismatch: one line, the rule and its details in the context', async () => {
    const d = newDir();
    await writeCpuinfoImage(d, skx);
    const e = await rejects(validateCpuinfoImage(d, INS, { host: zen2 }));
    expect(e).toMatchObject({ code: 'CPUINFO_MISMATCH', exitCode: 1, context: { rule: 'ins', mismatch: { rule: 'ins' } } });
    expect(e.message).toMatch(/^cpu: the image's CPU had instructions this CPU lacks: .*avx512f/);
    expect(e.message).not.toContain('\n');
  });

  it('a doctored image: one bit this CPU lacks', async () => {
    const d = newDir();
    const cap = [...turin.capability];
    setFeature(cap, feature('avx512_4fmaps'));
    await writeCpuinfoImage(d, { ...turin, capability: cap });
    expect(await rejects(validateCpuinfoImage(d, FPU | INS, { host: turin }))).toMatchObject({ context: { rule: 'ins', mismatch: { missing: ['avx512_4fmaps'] } } });
    expect(await validateCpuinfoImage(d, FPU, { host: turin })).toBeTruthy();
  });

  it('cpuinfo check: none means all; other rules as given', async () => {
    const d = newDir();
    const cap = [...turin.capability];
    clearFeature(cap, feature('hypervisor')); // a bit only the strict rule sees
    await writeCpuinfoImage(d, { ...turin, capability: cap });
    expect(await checkCpuinfoImage(d, FPU | INS, { host: turin })).toBeTruthy();
    expect(await rejects(checkCpuinfoImage(d, NONE, { host: turin }))).toMatchObject({ context: { rule: 'cpu' } });
    expect(await rejects(checkCpuinfoImage(d, CPU | IMAGE, { host: turin }))).toMatchObject({ context: { rule: 'cpu' } });
    // (cpu_cap left with only the image bit is not none: no rule, as in CRIU)
    expect(await checkCpuinfoImage(d, IMAGE, { host: turin })).toBeTruthy();
    // restore's check takes none as none
    expect(await validateCpuinfoImage(d, NONE, { host: turin })).toBeTruthy();
  });
});
