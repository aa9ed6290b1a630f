import { describe, expect, it } from 'vitest';
import { CPU_CAP } from '@crtools/common';
import { clearFeature, cpuMismatch, feature, INS_FEATURES, INS_MASK, probeCpuinfo, setFeature, type X86Cpuinfo } from '../src/index.js';
import { AMD_ZEN2, INTEL_SKX, TURIN_VM, cpuidOf } from './cpus.js';

const { FPU, CPU, INS, ALL, IMAGE, NONE } = CPU_CAP;
const probe = (leaves: Parameters<typeof cpuidOf>[0]): X86Cpuinfo => probeCpuinfo({ cpuid: cpuidOf(leaves) });

/** A copy of a cpuinfo with features set (+name) or cleared (-name), and other fields replaced. */
function edit(c: X86Cpuinfo, features: string[] = [], fields: Partial<X86Cpuinfo> = {}): X86Cpuinfo {
  const capability = [...c.capability];
  for (const f of features) (f[0] === '-' ? clearFeature : setFeature)(capability, feature(f.slice(1)));
  return { ...c, capability, ...fields };
}

const turin = probe(TURIN_VM.leaves);
const skx = probe(INTEL_SKX);
const zen2 = probe(AMD_ZEN2);

describe('cpuMismatch: the --cpu-cap rules', () => {
  it('a CPU fits itself under every rule', () => {
    for (const c of [turin, skx, zen2]) expect(cpuMismatch(c, c, ALL | IMAGE)).toBeUndefined();
  });

  it('none checks nothing, however different the CPUs', () => {
    expect(cpuMismatch(skx, zen2, NONE)).toBeUndefined();
    expect(cpuMismatch(skx, zen2, IMAGE)).toBeUndefined();
  });

  it('fpu: an FPU feature of the image missing here', () => {
    const m = cpuMismatch(zen2, turin, FPU); // Zen 2 has xsaves, the VM does not
    expect(m).toMatchObject({ rule: 'fpu', missing: ['xsaves'] });
    expect(m!.message).toBe("the image's CPU had FPU features this CPU lacks: xsaves (--cpu-cap fpu)");
    // the other way round is fine for that rule (sizes aside)
    expect(cpuMismatch(edit(turin), edit(zen2, [], { xfeatures_mask: turin.xfeatures_mask, xsave_size: turin.xsave_size, xsave_size_max: turin.xsave_size_max }), FPU)).toBeUndefined();
  });

  it('fpu: xsave components of the image not enabled here', () => {
    const m = cpuMismatch(skx, edit(skx, [], { xfeatures_mask: 0xe5n }), FPU);
    expect(m).toMatchObject({ rule: 'xfeatures', missing: ['mpx_bndcsr', 'pkru'], image: '0x2f5', host: '0xe5' });
    expect(m!.message).toMatch(/^the image's CPU had xsave components this CPU lacks: mpx_bndcsr, pkru \(xfeatures 0x2f5 here 0xe5; --cpu-cap fpu\)$/);
    // fewer components in the image is fine (the sizes still have to agree)
    expect(cpuMismatch(edit(skx, [], { xfeatures_mask: 0xe5n }), skx, FPU)).toBeUndefined();
  });

  it('fpu: the xsave sizes must be equal, either way', () => {
    expect(cpuMismatch(edit(turin, [], { xsave_size: 832 }), turin, FPU)).toMatchObject({
      rule: 'xsave_size', image: 832, host: 2432, message: 'the xsave area size differs: 832 bytes in the image, 2432 here (--cpu-cap fpu)',
    });
    expect(cpuMismatch(turin, edit(turin, [], { xsave_size_max: 2696 }), FPU)).toMatchObject({ rule: 'xsave_size_max', image: 2432, host: 2696 });
    // (not checked without fpu)
    expect(cpuMismatch(edit(turin, [], { xsave_size: 832 }), turin, INS | CPU)).toBeUndefined();
  });

  it('ins: the image\'s instruction-set features must be a subset of this CPU\'s', () => {
    const m = cpuMismatch(skx, zen2, INS);
    expect(m?.rule).toBe('ins');
    expect(m!.missing).toEqual(expect.arrayContaining(['avx512f', 'avx512dq', 'avx512cd', 'avx512bw', 'avx512vl', 'rtm', 'hle', 'mpx']));
    expect(m!.message).toMatch(/^the image's CPU had instructions this CPU lacks: .*avx512f.* \(--cpu-cap ins\)$/);
    // a richer CPU here is fine
    expect(cpuMismatch(edit(turin, ['-avx512f', '-avx512bw']), turin, INS)).toBeUndefined();
  });

  it('ins: only the instruction bits count (CRIU\'s list: no fma, no hypervisor, no power bits)', () => {
    const host = edit(turin, ['-hypervisor', '-fma', '-avx512ifma', '-arat']);
    expect(cpuMismatch(turin, host, INS)).toBeUndefined();
    expect(cpuMismatch(turin, host, CPU)?.rule).toBe('cpu');
    expect(INS_FEATURES).not.toContain('fma');
    expect(INS_MASK[0]).toBe((1 << 0) | (1 << 4) | (1 << 8) | (1 << 11) | (1 << 15) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26));
  });

  it('cpu: every word equal, in both directions', () => {
    const m = cpuMismatch(turin, edit(turin, ['-avx512f', '+pku']), CPU);
    expect(m).toMatchObject({ rule: 'cpu', missing: ['avx512f'], extra: ['pku'] });
    expect(m!.message).toBe("CPU capabilities differ: the image's CPU had avx512f; this CPU has pku (--cpu-cap cpu wants them equal)");
    expect(cpuMismatch(turin, edit(turin, ['+pku']), CPU)).toMatchObject({ rule: 'cpu', missing: [], extra: ['pku'] });
  });

  it('rules are checked in CRIU\'s order: fpu, ins, cpu', () => {
    expect(cpuMismatch(zen2, turin, ALL)?.rule).toBe('fpu');
    expect(cpuMismatch(skx, zen2, INS | CPU)?.rule).toBe('ins');
    expect(cpuMismatch(skx, edit(skx, ['+hypervisor']), ALL)?.rule).toBe('cpu');
  });

  it('a long list is cut short', () => {
    const m = cpuMismatch(skx, probe({ ...AMD_ZEN2, '0x7,0': [0, 0, 0, 0], '0x1,0': [0x00830f10, 0, 0, 0x178bfbff] }), INS);
    expect(m!.missing!.length).toBeGreaterThan(12);
    expect(m!.message).toMatch(/ and \d+ more \(--cpu-cap ins\)$/);
  });
});
