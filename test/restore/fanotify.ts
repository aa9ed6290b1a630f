/** The fanotify workload mounts a tmpfs (source "crtools-fanotify") for its mount mark: unmounted here after the tests. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function unmountFanotifyTmpfs(): void {
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    if (dash > 0 && f[dash + 1] === 'tmpfs' && f[dash + 2] === 'crtools-fanotify') spawnSync('umount', ['-l', f[4]!], { stdio: 'ignore' });
  }
}
