import { describe, expect, it } from 'vitest';
import { isCrtoolsError, ExitCode } from '@crtools/common';
import { parseKerndat, stringifyKerndat } from '../src/index.js';
import { machineDoc } from './helpers.js';

function badInput(input: unknown): string {
  try {
    parseKerndat(input);
  } catch (e) {
    expect(isCrtoolsError(e)).toBe(true);
    expect((e as { code: string }).code).toBe('KERNDAT_BAD_INPUT');
    expect((e as { exitCode: number }).exitCode).toBe(ExitCode.BAD_INPUT);
    return (e as Error).message;
  }
  throw new Error('accepted malformed input');
}

describe('kerndat JSON', () => {
  it('round-trips: 64-bit values as hex strings in JSON, bigint in memory', () => {
    const k = machineDoc();
    expect(typeof k.task_size).toBe('bigint');
    expect(typeof k.vdso!.areas[0]!.start).toBe('bigint');
    expect(typeof k.vdso!.symbols.__vdso_clock_gettime).toBe('bigint');
    const text = stringifyKerndat(k);
    expect(text).toMatch(/"task_size": "0x[0-9a-f]+"/);
    expect(text).toContain('"start": "0xffffffffff600000"'); // vsyscall, beyond 2^53
    expect(parseKerndat(text)).toEqual(k);
    expect(parseKerndat(JSON.parse(text))).toEqual(k);
  });

  it('rejects malformed documents with one clear message', () => {
    expect(badInput('')).toMatch(/empty input/);
    expect(badInput('{not json')).toMatch(/not JSON/);
    expect(badInput('[1,2]')).toMatch(/not a JSON object/);
    expect(badInput('null')).toMatch(/not a JSON object/);
    expect(badInput('{}')).toMatch(/schema/);
    const good = JSON.parse(stringifyKerndat(machineDoc()));
    expect(badInput({ ...good, release: 5 })).toMatch(/release/);
    expect(badInput({ ...good, has_kcmp: 'yes' })).toMatch(/"has_kcmp" should be true or false/);
    expect(badInput({ ...good, task_size: 'big' })).toMatch(/task_size should be a hex string/);
    expect(badInput({ ...good, vdso: { ...good.vdso, areas: 3 } })).toMatch(/vdso.areas/);
    expect(badInput({ ...good, vdso: { ...good.vdso, symbols: { x: 'zz' } } })).toMatch(/vdso.symbols.x/);
    expect(badInput({ ...good, sock_diag: { unix: 1 } })).toMatch(/sock_diag.unix/);
    expect(badInput({ ...good, errors: [] })).toMatch(/errors/);
  });
});
