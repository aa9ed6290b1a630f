import { describe, expect, it } from 'vitest';
import { applyCpuCap, CPU_CAP, CPU_CAP_DEFAULT, cpuCapNames, criuOptions, isCrtoolsError, parseCpuCap } from '../src/index.js';

const { FPU, CPU, INS, IMAGE, ALL, NONE } = CPU_CAP;

describe('--cpu-cap as CRIU 4.2 parses it', () => {
  it('the default is fpu,ins without the image (CRIU writes no cpuinfo.img unless asked)', () => {
    expect(CPU_CAP_DEFAULT).toBe(FPU | INS);
    expect(criuOptions().cpu_cap).toBe(FPU | INS);
    expect(parseCpuCap([])).toBe(FPU | INS);
  });

  it('without a value: every rule and the image', () => {
    expect(parseCpuCap([undefined])).toBe(ALL | IMAGE);
    expect(applyCpuCap(NONE, undefined)).toBe(ALL | IMAGE);
  });

  it.each([
    ['fpu', FPU | INS | IMAGE],
    ['ins', FPU | INS | IMAGE],
    ['cpu', FPU | CPU | INS | IMAGE],
    ['all', ALL | IMAGE],
    ['none', NONE],
    ['', FPU | INS | IMAGE], // an empty list still asks for the image
    [',', FPU | INS | IMAGE],
  ])('each value adds to the default: %j', (v, want) => {
    expect(parseCpuCap([v])).toBe(want);
  });

  it.each([
    ['^fpu', INS | IMAGE],
    ['^ins', FPU | IMAGE],
    ['^cpu', FPU | INS | IMAGE],
    ['^all', NONE], // nothing left: no image either
    ['^fpu,^ins', NONE],
    ['^none', ALL | IMAGE],
    ['^^fpu', FPU | INS | IMAGE], // a second ^ cancels the first
  ])('^ removes: %j', (v, want) => {
    expect(parseCpuCap([v])).toBe(want);
  });

  it.each([
    ['none,fpu', FPU | IMAGE],
    ['fpu,none', NONE],
    ['none,cpu,ins', CPU | INS | IMAGE],
    ['^fpu,cpu', CPU | INS | IMAGE], // a comma ends the ^
    ['^fpu^cpu', CPU | INS | IMAGE], // so does a second ^
    ['^fpucpu', INS | IMAGE], // names back to back, as CRIU reads them: ^ covers both
    ['fpuins', FPU | INS | IMAGE],
    ['^all,fpu', FPU | IMAGE],
  ])('combinations: %j', (v, want) => {
    expect(parseCpuCap([v])).toBe(want);
  });

  it('occurrences apply in order, each over the one before', () => {
    expect(parseCpuCap(['none', 'ins'])).toBe(INS | IMAGE);
    expect(parseCpuCap(['cpu', 'none'])).toBe(NONE);
    expect(parseCpuCap(['^all', undefined])).toBe(ALL | IMAGE);
    expect(parseCpuCap(['^fpu'], NONE)).toBe(NONE);
  });

  it.each(['image', 'fpu,image', 'FPU', 'fpux', 'sse', 'all;', ' fpu', 'no'])('an unknown value is a usage error: %j', (v) => {
    let err: unknown;
    try {
      parseCpuCap([v]);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'USAGE', exitCode: 2, context: { option: 'cpu-cap', value: v } });
    expect((err as Error).message).toMatch(/^--cpu-cap: unknown value '.*' in '.*' \(fpu, cpu, ins, all, none; \^ removes one\)$/);
  });

  it('names the bits', () => {
    expect(cpuCapNames(NONE)).toBe('none');
    expect(cpuCapNames(FPU | INS)).toBe('fpu,ins');
    expect(cpuCapNames(ALL | IMAGE)).toBe('fpu,cpu,ins,image');
  });
});
