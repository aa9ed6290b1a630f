/**
 * A named cgroup v1 hierarchy (name=NAME) for the tests that make one: mounted at a fresh
 * directory for a moment, and emptied (child cgroups removed depth first) when a test is done.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Hierarchy name=`name` mounted at a fresh directory for `fn` (made if it does not exist), unmounted after. */
export function withNamedHierarchy<T>(name: string, fn: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'crtools-cgtest-'));
  try {
    run('mount', ['-t', 'cgroup', '-o', `none,name=${name}`, 'cgroup', dir]);
    try {
      return fn(dir);
    } finally {
      run('umount', [dir]);
    }
  } finally {
    rmdirSync(dir);
  }
}

/**
 * Every child cgroup of hierarchy name=`name` removed, depth first (a task just killed may hold
 * one a moment), and the hierarchy gone with its last mount. The kernel destroys a v1 hierarchy
 * when its last mount goes only if it has no child cgroup left then, and a removed cgroup leaves
 * its parent's list a moment after rmdir(2) returns: an unmount right after may keep it for good
 * (every process then shows it in /proc/PID/cgroup, at the root). So it is mounted again and
 * unmounted until no process shows it.
 */
export function emptyNamedHierarchy(name: string): void {
  removeChildren(name);
  for (let i = 0; i < 50 && namedCgroupOf(name, process.pid) !== undefined; i++) {
    spawnSync('sleep', ['0.02']);
    removeChildren(name);
  }
}

function removeChildren(name: string): void {
  withNamedHierarchy(name, (root) => {
    const rm = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(d, e.name));
      if (d === root) return;
      for (let i = 0; ; i++) {
        try {
          rmdirSync(d);
          return;
        } catch (e) {
          if (i >= 100 || (e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
          spawnSync('sleep', ['0.02']);
        }
      }
    };
    rm(root);
  });
}

/** A task's cgroup in hierarchy name=`name`, as its /proc/PID/cgroup names it (as criu sees it). */
export function namedCgroupOf(name: string, pid: number): string | undefined {
  return (new RegExp(`^\\d+:name=${name}:(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8')) ?? [])[1];
}
