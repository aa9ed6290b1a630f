import { describe, expect, it } from 'vitest';
import { CrtoolsError, ExitCode, fromHex, hexReplacer, isCrtoolsError, syscallError, toHex, treeHelpers } from '../src/index.js';

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

describe('treeHelpers', () => {
  const t = (pid: number, ppid: number, pgid: number, sid = 10, more: { zombie?: boolean; childSubreaper?: boolean } = {}) => ({ pid, ppid, pgid, sid, ...more });
  it('a group whose leader is gone: a helper with its pid, forked by its first member', () => {
    expect(treeHelpers([t(10, 1, 10), t(11, 10, 20), t(12, 10, 20, 10, { zombie: true }), t(13, 11, 20)], false)).toEqual({ helpers: [{ pid: 20, host: 11, setsid: false, children: [], reaper: 0 }], refused: [], bornSid: new Map() });
  });
  it('the root\'s group, led from outside, needs none', () => {
    expect(treeHelpers([t(10, 1, 5), t(11, 10, 5)], false)).toEqual({ helpers: [], refused: [], bornSid: new Map() });
  });
  it('orphans of a gone session leader under the init: a helper with the session\'s pid, forked by their reaper, which leads their group too', () => {
    const tree = [t(1, 0, 1, 1), t(5, 1, 3, 3), t(6, 1, 3, 3, { zombie: true }), t(7, 5, 3, 3)];
    expect(treeHelpers(tree, true)).toEqual({ helpers: [{ pid: 3, host: 1, setsid: true, children: [5, 6], reaper: 1 }], refused: [], bornSid: new Map() });
    // outside a pid namespace only a subreaper reaps them
    expect(treeHelpers(tree, false).refused[0]!.why).toBe("task 5 is in session 3, not in its parent 1's (1) nor a session of its own: a helper process of the session would leave it to a process outside the tree, not to 1 (1 is not the nearest subreaper)");
    expect(treeHelpers([t(1, 0, 1, 1, { childSubreaper: true }), ...tree.slice(1)], false).helpers).toHaveLength(1);
  });
  it('orphans of a live (or zombie) session leader: a helper forked by the leader, any pid', () => {
    expect(treeHelpers([t(1, 0, 1, 1), t(2, 1, 2, 2, { zombie: true }), t(3, 1, 2, 2)], true)).toEqual({ helpers: [{ pid: 0, host: 2, setsid: false, children: [3], reaper: 1 }], refused: [], bornSid: new Map() });
  });
  it('tasks forked before the tasks above them made sessions of their own are born in the session of a leader above them', () => {
    // 10 leads session 10; 11 forked 12 and then 13 before setsid (12 born in 10: 11 too), 13 forked 14 before its own
    expect(treeHelpers([t(10, 1, 10), t(11, 10, 11, 11), t(12, 11, 10, 10), t(13, 11, 13, 13), t(14, 13, 11, 11)], false)).toEqual({ helpers: [], refused: [], bornSid: new Map([[11, 10], [13, 11]]) });
    expect(treeHelpers([t(10, 1, 10), t(11, 10, 11, 11), t(12, 11, 12, 12), t(13, 12, 10, 10), t(14, 12, 11, 11)], false).refused[0]!.why).toBe("task 14 is in session 11, not in its parent 12's (12) nor a session of its own: task 12 would have been born in sessions 10 and 11");
  });
  it('an orphan its helper would leave to another reaper: refused by name', () => {
    const sub = [t(1, 0, 1, 1), t(2, 1, 2, 1, { childSubreaper: true }), t(3, 2, 3, 3), t(4, 3, 3, 3)];
    expect(treeHelpers([...sub, t(5, 1, 3, 3)], true).refused[0]!.why).toContain('would leave it to 2, not to 1');
  });
});
