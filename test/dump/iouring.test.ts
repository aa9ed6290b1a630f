/**
 * io_uring: a process with a ring (its descriptor and mapped rings) and the kernel's threads
 * that serve it, listed in /proc/PID/task beside the program's own (iou-sqp-PID, a submission
 * poller; iou-wrk-PID, the io worker pool). crtools does not carry io_uring: the dump refuses the
 * ring by name (exit 4) and the process goes on, its ring working. The kernel's threads are no
 * threads of the program: they are not seized (they take a ptrace stop but run no user code,
 * so the parasite would wait on them until its timeout). Every process is killed by pid.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { askVerdict, criu, killAllStarted, procStatus, startWorkload, tmp } from './helpers.js';

afterAll(() => killAllStarted());

/** The comm of each task /proc/PID/task lists. */
function taskComms(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
}

describe('io_uring', () => {
  it("a ring with a submission poller and io workers: refused by name (its mappings and descriptor), exit 4, at once; the process goes on untraced, its ring working", () => {
    const w = startWorkload('iouring', []);
    expect(Number(/workers:(\d+)/.exec(readFileSync(w.state, 'utf8'))![1])).toBeGreaterThan(0);
    expect(taskComms(w.pid)).toContain(`iou-sqp-${w.pid}`);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('iouring-check'), '-o', 'check.log']);
    expect(c.code, c.stderr).toBe(4);
    const lines = c.stderr.trim().split('\n');
    // no stop waited for on the kernel's threads: each line a refusal of the ring
    expect(c.stderr).not.toMatch(/did not stop/);
    expect(lines.filter((l) => /: mapping [0-9a-f]+-[0-9a-f]+ anon_inode:\[io_uring\]: an io_uring ring is not supported yet$/.test(l)).length).toBe(3);
    expect(lines.filter((l) => new RegExp(`^criu: task ${w.pid} fd \\d+: anon_inode:\\[io_uring\\] is not supported$`).test(l)).length).toBe(1);
    expect(lines[lines.length - 1]).toBe(`criu: a dump of the tree of ${w.pid} would fail: 4 things in it cannot be dumped`);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('iouring'), '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr.trim()).toMatch(new RegExp(`^criu: task ${w.pid}: mapping [0-9a-f]+-[0-9a-f]+ anon_inode:\\[io_uring\\]: an io_uring ring is not supported yet$`));
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
    for (const t of readdirSync(`/proc/${w.pid}/task`)) expect(readFileSync(`/proc/${w.pid}/task/${t}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
  });
});
