import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { feature, featureName, featureNames, hasFeature, NCAPINTS, probeCpuinfo, WORD, writeCpuinfoImage, type X86Cpuinfo } from '../src/index.js';
import { AMD_ZEN2, INTEL_SKX, TURIN_VM, cpuidOf, vendorLeaf, withLeaves } from './cpus.js';

const dir = mkdtempSync(path.join(tmpdir(), 'crtools-cpuinfo-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const probe = (leaves: Parameters<typeof cpuidOf>[0]): X86Cpuinfo => probeCpuinfo({ cpuid: cpuidOf(leaves) });
const has = (c: X86Cpuinfo, name: string) => hasFeature(c.capability, feature(name));

describe('features: CRIU\'s word layout', () => {
  it('names each feature once and finds it where the layout puts it', () => {
    expect(feature('fpu')).toBe(0);
    expect(feature('fxsr')).toBe(24);
    expect(feature('syscall')).toBe(32 + 11);
    expect(feature('nopl')).toBe(3 * 32 + 20);
    expect(feature('osxsave')).toBe(4 * 32 + 27);
    expect(feature('avx512f')).toBe(9 * 32 + 16);
    expect(feature('xsaves')).toBe(10 * 32 + 3);
    expect(feature('pku')).toBe(11 * 32 + 3);
    expect(feature('clzero')).toBe(13 * 32);
    expect(feature('hdc')).toBe(14 * 32 + 13);
    expect(feature('cqm_llc')).toBe(16 * 32 + 1);
    expect(feature('avx512_4fmaps')).toBe(18 * 32 + 3);
    for (const [name, f] of featureNames()) expect(featureName(f)).toBe(name);
    expect(() => feature('no-such')).toThrow(RangeError);
  });

  it('names an unnamed bit by its leaf and register', () => {
    expect(featureName(WORD.CPUID_7_0_EDX * 32 + 5)).toBe('cpuid(0x7,0).edx bit 5');
    expect(featureName(WORD.LINUX_1 * 32 + 0)).toBe('word 3 bit 0');
  });
});

describe('probeCpuinfo on recorded leaves', () => {
  it('an AMD EPYC VM: the very bytes CRIU 4.2 wrote there', async () => {
    const c = probe(TURIN_VM.leaves);
    expect(c).toMatchObject({ vendor_id: 'AMD', cpu_family: 26, model: 2, stepping: 1, capability_ver: 2, xsave_size: 2432, xsave_size_max: 2432 });
    expect(c.capability).toHaveLength(NCAPINTS);
    // raw mask 0xe7: CRIU drops SSE (bit 1) with its supervisor mask
    expect(c.xfeatures_mask).toBe(0xe5n);
    expect(c.model_id).toBe('Oxide Virtual Turin-like Processor             ');
    const file = await writeCpuinfoImage(dir, c);
    expect(readFileSync(file).toString('hex')).toBe(TURIN_VM.criuImage.toString('hex'));
  });
});

describe('probeCpuinfo on synthetic CPUs', () => {
  it('Intel, Skylake-SP kind', () => {
    const c = probe(INTEL_SKX);
    expect(c).toMatchObject({ vendor_id: 'INTEL', cpu_family: 6, model: 0x55, stepping: 4, xsave_size: 0xa88, xsave_size_max: 0xa88 });
    expect(c.model_id).toBe('Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz'); // leading blanks dropped
    // the words, as the leaves hold them
    expect(c.capability[WORD.CPUID_1_EDX]).toBe(0xbfebfbff); // (bit 31 stays on Intel)
    expect(c.capability[WORD.CPUID_1_ECX]).toBe(0x7ffefbff);
    expect(c.capability[WORD.CPUID_7_0_EBX]).toBe(0xd39ffffb);
    expect(c.capability[WORD.CPUID_7_0_ECX]).toBe(0xc);
    expect(c.capability[WORD.CPUID_7_0_EDX]).toBe(0xbc000000);
    expect(c.capability[WORD.CPUID_D_1_EAX]).toBe(0xf);
    expect(c.capability[WORD.CPUID_6_EAX]).toBe(0x77);
    expect(c.capability[WORD.CPUID_8000_0001_ECX]).toBe(0x121);
    expect(c.capability[WORD.CPUID_8000_0001_EDX]).toBe(0x2c100800);
    expect(c.capability[WORD.CPUID_8000_0007_EBX]).toBe(0);
    // cqm_llc in cpuid(0xf,0).edx: cpuid(0xf,1).edx is read too
    expect(c.capability[WORD.CPUID_F_0_EDX]).toBe(0x2);
    expect(c.capability[WORD.CPUID_F_1_EDX]).toBe(0x7);
    // CRIU's own word: cpuid, nopl, and rep_good for family 6
    expect(c.capability[WORD.LINUX_1]).toBe((1 << 25) | (1 << 20) | (1 << 16));
    // 0x2ff: every user component backed by a feature bit, less bits 1 and 3 as CRIU computes it
    expect(c.xfeatures_mask).toBe(0x2f5n);
    expect(['avx512f', 'avx512bw', 'pku', 'xsaves', 'mpx'].every((n) => has(c, n))).toBe(true);
  });

  it('AMD, Zen 2 kind: no AVX-512; cpuid(1).edx bit 31 cleared', () => {
    const c = probe(AMD_ZEN2);
    expect(c).toMatchObject({ vendor_id: 'AMD', cpu_family: 0x17, model: 0x31, stepping: 0, xsave_size: 0x340, xsave_size_max: 0x340 });
    expect(c.model_id).toBe('AMD EPYC 7402P 24-Core Processor               ');
    expect(c.capability[WORD.CPUID_1_EDX]).toBe(0x178bfbff);
    expect(c.capability[WORD.CPUID_8000_0008_EBX]).toBe(0x1007);
    expect(c.capability[WORD.CPUID_8000_0007_EBX]).toBe(0xb);
    expect(c.capability[WORD.CPUID_8000_000A_EDX]).toBe(0x1bcff);
    expect(c.capability[WORD.CPUID_F_0_EDX]).toBe(0); // max leaf 0x10 but no cqm
    expect(has(c, 'rep_good')).toBe(true); // family >= 0x10
    expect(has(c, 'avx512f')).toBe(false);
    expect(has(c, 'avx2') && has(c, 'xsaves') && has(c, 'clzero')).toBe(true);
    expect(c.xfeatures_mask).toBe(0x5n);
  });

  it('Hygon counts as AMD; another vendor is refused', () => {
    expect(probe(withLeaves(AMD_ZEN2, { '0x0,0': vendorLeaf(0x10, 'HygonGenuine') })).vendor_id).toBe('AMD');
    expect(() => probe(withLeaves(AMD_ZEN2, { '0x0,0': vendorLeaf(0x10, 'CentaurHauls') }))).toThrow(
      expect.objectContaining({ code: 'CPUINFO_VENDOR', exitCode: 4, message: expect.stringContaining("'CentaurHauls'") }),
    );
  });

  it('below leaf 0xd: no xsave bit, no xsave mask nor sizes, and the leaves above are not read', () => {
    const c = probe(withLeaves(INTEL_SKX, { '0x0,0': vendorLeaf(0xb, 'GenuineIntel') }));
    expect(has(c, 'xsave')).toBe(false);
    expect(c.capability[WORD.CPUID_D_1_EAX]).toBe(0);
    expect(c.capability[WORD.CPUID_F_0_EDX]).toBe(0);
    expect(c.capability[WORD.CPUID_7_0_EBX]).toBe(0xd39ffffb);
    expect(c).toMatchObject({ xfeatures_mask: 0n, xsave_size: 0, xsave_size_max: 0 });
  });

  it('xsave components whose feature bit is clear are dropped from the mask', () => {
    // no pku: pkru (bit 9) goes; no avx512f: the three AVX-512 components go
    const c = probe(withLeaves(INTEL_SKX, { '0x7,0': [0, 0xd39ffffb & ~(1 << 16), 0, 0] }));
    expect(c.xfeatures_mask).toBe(0x2f5n & ~0x2e0n);
  });

  it('family 0xf: the extended family is added (a byte); Intel family 15 loses rep_good and erms', () => {
    const c = probe(withLeaves(INTEL_SKX, { '0x1,0': [0x00000f41, 0, 0x7ffefbff, 0xbfebfbff] }));
    expect(c).toMatchObject({ cpu_family: 15, model: 4, stepping: 1 });
    expect(has(c, 'rep_good') || has(c, 'erms')).toBe(false);
    const amd = probe(withLeaves(AMD_ZEN2, { '0x1,0': [0x0ff00f00, 0, 0x7ed8320b, 0x178bfbff] }));
    expect(amd.cpu_family).toBe((0xf + 0xff) & 0xff);
  });

  it('AMD K8 (family 0xf): rep_good from stepping C on', () => {
    const k8 = (sig: number) => probe(withLeaves(AMD_ZEN2, { '0x1,0': [sig, 0, 0x7ed8320b, 0x178bfbff] }));
    expect(has(k8(0x0f48), 'rep_good')).toBe(true);
    expect(has(k8(0x0f50), 'rep_good')).toBe(false);
    expect(has(k8(0x0f58), 'rep_good')).toBe(true);
    expect(has(k8(0x0f40), 'rep_good')).toBe(false);
  });

  it('no brand string leaves: no model_id', () => {
    const c = probe(withLeaves(AMD_ZEN2, { '0x80000000,0': [0x80000001, 0, 0, 0] }));
    expect(c.model_id).toBeUndefined();
    expect(c.capability[WORD.CPUID_8000_0008_EBX]).toBe(0);
    expect(has(c, 'syscall')).toBe(true);
  });
});

describe('probeCpuinfo on this machine', () => {
  it('reads the CPU through @crtools/sys (whatever it is)', () => {
    const c = probeCpuinfo();
    expect(['INTEL', 'AMD']).toContain(c.vendor_id);
    expect(c.capability).toHaveLength(NCAPINTS);
    expect(has(c, 'fpu') && has(c, 'cpuid') && has(c, 'nopl')).toBe(true);
  });
});
