import { describe, expect, it } from 'vitest';
import type { RestorePlan, TaskPlan } from '@crtools/restorer';
import { inheritMap, shellJobPlan } from '@crtools/restorer';
import { parseInheritFd } from '../src/criu/restore.js';

const task = (pid: number, sid: number, pgid: number): TaskPlan => ({ pid, sid, pgid } as TaskPlan);
const plan = (...tasks: TaskPlan[]): RestorePlan => ({ tasks, files: [] });
const ids = (p: RestorePlan) => p.tasks.map((t) => [t.pid, t.sid, t.pgid]);

describe('shellJobPlan (CRIU --shell-job)', () => {
  const own = { sid: 500, pgid: 510 };

  it('a session leader root is left alone', () => {
    const p = plan(task(100, 100, 100), task(101, 100, 101));
    expect(shellJobPlan(p, own, true)).toBe(p);
    expect(shellJobPlan(p, own, false)).toBe(p);
  });

  it('a group-leading root of an outside session: the session becomes criu\'s, the groups stay', () => {
    const p = plan(task(100, 7, 100), task(101, 7, 100), task(102, 102, 102));
    expect(ids(shellJobPlan(p, own, true))).toEqual([[100, 500, 100], [101, 500, 100], [102, 102, 102]]);
  });

  it('a root in an outside group too: the group becomes criu\'s', () => {
    const p = plan(task(100, 7, 9), task(101, 7, 9), task(102, 7, 102));
    expect(ids(shellJobPlan(p, own, true))).toEqual([[100, 500, 510], [101, 500, 510], [102, 500, 102]]);
  });

  it('without -j it is refused, unless criu is in that very session', () => {
    const p = plan(task(100, 7, 9));
    expect(() => shellJobPlan(p, own, false)).toThrow(/not a session leader .*--shell-job/);
    expect(shellJobPlan(p, { sid: 7, pgid: 9 }, false)).toBe(p);
  });

  it('criu\'s session or group colliding with the checkpoint is refused', () => {
    expect(() => shellJobPlan(plan(task(100, 7, 9), task(500, 7, 500)), own, true)).toThrow(/session 500/);
    expect(() => shellJobPlan(plan(task(100, 7, 9), task(510, 7, 510)), own, true)).toThrow(/group 510/);
  });
});

describe('parseInheritFd', () => {
  it('fd[N]:resource → resource → N; bad forms are usage errors', () => {
    expect(parseInheritFd(['fd[0]:pipe:[12]', 'fd[1]:tmp/log'])).toEqual([{ key: 'pipe:[12]', fd: 0 }, { key: 'tmp/log', fd: 1 }]);
    for (const bad of ['fd0:x', 'fd[0]', 'fd[0]:', 'x[0]:y']) expect(() => parseInheritFd([bad])).toThrow(/invalid --inherit-fd/);
    // the engine takes them by resource, each descriptor open
    expect([...inheritMap(parseInheritFd(['fd[0]:pipe:[12]', 'fd[1]:tmp/log']))]).toEqual([['pipe:[12]', 0], ['tmp/log', 1]]);
    expect(() => inheritMap(parseInheritFd(['fd[4000]:x']))).toThrow(/not open/);
  });
});
