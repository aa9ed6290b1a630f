import { fstatSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shellTerminal } from '../src/shell-terminal.js';
import type { RestorePlan } from '../src/plan.js';

const settings = { termios: Buffer.alloc(36, 1), termiosLocked: Buffer.alloc(36), winsize: [24, 80, 0, 0] as [number, number, number, number], uid: 0xffffffff, gid: 0xffffffff };

/** A plan with tasks (pid, sid) and the shell's terminal (a pty slave outside the tree) at two files, the session it was the terminal of `sid`. */
function plan(tasks: [number, number][], sid: number): RestorePlan {
  const term = (flags: number) => ({ kind: 'inherit', flags, pos: 0n, inheritFd: 0, shellTerminal: 3, tty: { ...settings, ctty: { sid, pgrp: sid } } });
  return {
    tasks: tasks.map(([pid, s]) => ({ pid, sid: s, pgid: pid })),
    files: [{ kind: 'inherit', flags: 0, pos: 0n, inheritFd: 7 }, term(2), term(1)],
  } as unknown as RestorePlan;
}

const shellFiles = (p: RestorePlan) => p.files.filter((f) => f.kind === 'inherit' && f.shellTerminal !== undefined) as any[];

describe('-j: the restore\'s terminal for the shell\'s', () => {
  it('a plan without one is left as it is', () => {
    const p = { tasks: [{ pid: 1, sid: 1 }], files: [] } as unknown as RestorePlan;
    expect(shellTerminal(p).plan).toBe(p);
  });

  it('a job of the restore\'s session: criu\'s standard input at every descriptor of it, its settings, no session taking it; refused when standard input is not a terminal', () => {
    const p = plan([[100, 50]], 50);
    const t = shellTerminal(p, { ownTty: () => 0x8801, stdinIsTty: () => true });
    expect(shellFiles(t.plan)).toEqual([
      expect.objectContaining({ inheritFd: 0, flags: 2, tty: settings }),
      expect.objectContaining({ inheritFd: 0, flags: 1, tty: settings }),
    ]);
    expect(t.plan.files[0]).toMatchObject({ inheritFd: 7 });
    expect(() => shellTerminal(p, { stdinIsTty: () => false })).toThrow("--shell-job: /dev/pts/3 was a terminal outside the tree, to be criu's standard input, which is not a terminal");
  });

  it('a root that led its session with it: the restore\'s controlling terminal by its own node, taken from the restore\'s session (steal), closed after', () => {
    const p = plan([[100, 100], [101, 100]], 100);
    // (/dev/null stands for the terminal: found by its device number under /dev)
    const rdev = statSync('/dev/null').rdev;
    const t = shellTerminal(p, { ownTty: () => rdev, stdinIsTty: () => false });
    const [a, b] = shellFiles(t.plan);
    expect(a.inheritFd).toBeGreaterThan(2);
    expect(b.inheritFd).toBe(a.inheritFd);
    expect(fstatSync(a.inheritFd).rdev).toBe(rdev);
    expect(a.tty).toEqual({ ...settings, ctty: { sid: 100, pgrp: 100 }, steal: true });
    t.close();
    expect(() => fstatSync(a.inheritFd)).toThrow(/EBADF/);
  });

  it('a root that led its session with it, no controlling terminal here: criu\'s standard input if it is a terminal (not taken from another session), else refused; a terminal not found refused', () => {
    const p = plan([[100, 100]], 100);
    const t = shellTerminal(p, { ownTty: () => 0, stdinIsTty: () => true });
    expect(shellFiles(t.plan).map((f) => [f.inheritFd, f.tty.ctty, f.tty.steal])).toEqual([[0, { sid: 100, pgrp: 100 }, undefined], [0, { sid: 100, pgrp: 100 }, undefined]]);
    expect(() => shellTerminal(p, { ownTty: () => 0, stdinIsTty: () => false })).toThrow('the restore has no terminal to give it (no controlling terminal; standard input is not a terminal)');
    // (/dev/pts/4000, 136+15:160, is not there)
    expect(() => shellTerminal(p, { ownTty: () => (0x8f << 8) | 0xa0, stdinIsTty: () => true })).toThrow("the restore's controlling terminal (143:160) is not found under /dev/pts or /dev");
  });

  it('the terminal of a session led in the tree by another task than the root: refused', () => {
    expect(() => shellTerminal(plan([[100, 100], [101, 101]], 101), { ownTty: () => 0, stdinIsTty: () => true })).toThrow('--shell-job: /dev/pts/3, a terminal outside the tree, is the controlling terminal of session 101, which the root does not lead');
  });
});
