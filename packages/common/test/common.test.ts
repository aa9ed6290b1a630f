import { describe, expect, it } from 'vitest';
import { CrtoolsError, ExitCode, fromHex, hexReplacer, isCrtoolsError, syscallError, toHex } from '../src/index.js';

describe('hex', () => {
  it('round-trips values above 2^53', () => {
    const v = 0xffffffffff600000n;
    expect(toHex(v)).toBe('0xffffffffff600000');
    expect(fromHex(toHex(v))).toBe(v);
    expect(JSON.stringify({ a: v }, hexReplacer)).toBe('{"a":"0xffffffffff600000"}');
  });
  it('rejects non-hex', () => {
    expect(() => fromHex('12')).toThrow(TypeError);
  });
});

describe('errors', () => {
  it('brands CrtoolsError across copies', () => {
    const e = new CrtoolsError('IMG_TRUNCATED', 'truncated', { exitCode: ExitCode.BAD_INPUT, context: { offset: 12 } });
    expect(isCrtoolsError(e)).toBe(true);
    expect(isCrtoolsError(new Error('x'))).toBe(false);
    expect(e.exitCode).toBe(3);
  });
  it('builds Node-shaped syscall errors', () => {
    const e = syscallError('ptrace', 1, { pid: 42 });
    expect(e.code).toBe('EPERM');
    expect(e.errno).toBe(-1);
    expect(e.syscall).toBe('ptrace');
    expect(e.message).toBe('ptrace (pid 42): EPERM');
  });
});
