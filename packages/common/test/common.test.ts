import { describe, expect, it } from 'vitest';
import { CrtoolsError, ExitCode, foreignSessionTasks, foreignSessionText, fromHex, hexReplacer, isCrtoolsError, leaderlessGroups, leaderlessGroupText, syscallError, toHex } from '../src/index.js';

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

describe('leaderlessGroups', () => {
  // P(10) in session 10; its children's group 20 has no task 20 (the leader is gone)
  const t = (pid: number, ppid: number, pgid: number, sid = 10, zombie = false) => ({ pid, ppid, pgid, sid, zombie });
  it('a group of one parent\'s children is made again by a helper of that parent', () => {
    expect(leaderlessGroups([t(10, 1, 10), t(11, 10, 20), t(12, 10, 20, 10, true)])).toEqual([{ pgid: 20, members: [11, 12], parent: 10 }]);
  });
  it('the root\'s group, led from outside, is none of these', () => {
    expect(leaderlessGroups([t(10, 1, 5), t(11, 10, 5)])).toEqual([]);
  });
  it('members of different parents, a zombie parent, another session, a second group of one parent: refused by name', () => {
    const [g] = leaderlessGroups([t(10, 1, 10), t(11, 10, 20), t(13, 11, 20)]);
    expect(g!.why).toBe('its members are children of different tasks');
    expect(leaderlessGroupText(g!)).toBe('process group 20 (of pid 11, 13), whose leader is gone: its members are children of different tasks, which is not restored yet');
    expect(leaderlessGroups([t(10, 1, 10), t(11, 10, 11, 10, true), t(12, 11, 20)])[0]!.why).toBe('their parent is a zombie');
    expect(leaderlessGroups([t(10, 1, 10), t(11, 10, 20, 30)])[0]!.why).toBe('its members are in another session than their parent 10');
    expect(leaderlessGroups([t(10, 1, 10), t(11, 10, 20), t(12, 10, 21)]).map((g) => g.why)).toEqual([undefined, 'task 10 has children in another such group (20) too']);
  });
});

describe('foreignSessionTasks', () => {
  const t = (pid: number, ppid: number, sid: number) => ({ pid, ppid, pgid: sid, sid });
  it('a task in its parent\'s session, or leading its own, is made by a fork (and setsid); the root\'s parent is outside', () => {
    expect(foreignSessionTasks([t(10, 1, 5), t(11, 10, 5), t(12, 10, 12), t(13, 12, 12)])).toEqual([]);
  });
  it('one in a session neither its own nor its parent\'s (orphaned to a subreaper or a namespace\'s init) is named', () => {
    const f = foreignSessionTasks([t(10, 1, 10), t(11, 10, 11), t(13, 10, 11)]);
    expect(f).toEqual([{ pid: 13, sid: 11, ppid: 10, parentSid: 10 }]);
    expect(foreignSessionText(f[0]!)).toBe("task 13 is in session 11, not in its parent 10's (10) nor a session of its own: a task whose session is not its parent's is not restored yet");
  });
});
