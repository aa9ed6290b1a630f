import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { compareFingerprints, fieldsPerTask, fingerprint } from '../src/index.js';

const started: number[] = [];
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

describe('fingerprint of a live process (needs root for PFNs and pidfd_getfd)', () => {
  it('an idle sleep: two prints in a row are equal, and say what /proc says', async () => {
    const child = spawn('/bin/sleep', ['100'], { stdio: ['ignore', 'ignore', 'ignore'] });
    started.push(child.pid!);
    await new Promise((r) => setTimeout(r, 200));
    const a = fingerprint(child.pid!);
    const b = fingerprint(child.pid!);
    expect(compareFingerprints(a, b)).toEqual([]);
    const t = a.tasks[0]!;
    expect(t.pid).toBe(child.pid);
    expect(t.exe).toBe('/usr/bin/sleep');
    expect(t.status['PPid']).toBe(String(process.pid));
    expect(t.threads.map((th) => th.tid)).toEqual([child.pid]);
    expect(t.areas.some((x) => x.name === '[stack]')).toBe(true);
    expect(Object.keys(t.fds)).toEqual(expect.arrayContaining(['0', '1', '2']));
    expect(t.fds['0']!.fcntl['F_GETFL']).toBeTypeOf('number');
    expect(fieldsPerTask(a)).toBeGreaterThan(100);
  });

  it('a process that is gone: ESRCH', () => {
    expect(() => fingerprint(4194303)).toThrow(/no such process/);
  });
});
