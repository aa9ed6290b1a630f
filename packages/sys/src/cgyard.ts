/**
 * A cgroup yard (CRIU's word): the cgroup hierarchies a dump reads or a restore changes, reached
 * through mounts crtools makes itself rather than through whatever criu's mount namespace shows
 * (a hierarchy may have no mount there at all: a named v1 hierarchy made and unmounted again).
 *
 * Each hierarchy is mounted on first use in a fresh directory under the temporary directory,
 * opened, and detached at once (umount2 MNT_DETACH) and its directory removed: from then on
 * only this process reaches it, through /proc/self/fd/N, and no mount namespace shows it; it
 * goes away with the descriptor (close(), or the process's end, whatever happens).
 *
 * With a yard given (--cgroup-yard PATH) nothing is mounted there that exists: each hierarchy is
 * PATH/NAME, NAME its controllers joined by ',' with 'name=' dropped ('unified' for v2), as
 * criu.8 says. A missing one is made and mounted there, and removed again on close().
 */
import { mkdirSync, mkdtempSync, openSync, closeSync, rmdirSync, existsSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { MNT_DETACH, mountSteps } from './mounts.js';

export interface CgroupYardOptions {
  /** --cgroup-yard: a directory holding one mount per hierarchy */
  yard?: string;
  /** one line per mount made or removed */
  log?: (line: string) => void;
}

/** A hierarchy's name as /proc/PID/cgroup and cgroup.img spell it: '' (v2), 'cpu,cpuacct', 'name=systemd'. */
function mountArgs(name: string): { fstype: string; data?: string } {
  if (name === '') return { fstype: 'cgroup2' };
  const names = name.split(',');
  // (a hierarchy of names only is mounted with no controller: 'none')
  return { fstype: 'cgroup', data: names.some((n) => !n.startsWith('name=')) ? name : `none,${name}` };
}

/** The directory of a hierarchy in a --cgroup-yard (criu.8's naming). */
export function yardDirName(name: string): string {
  return name.split(',').map((n) => (n === '' ? 'unified' : n.startsWith('name=') ? n.slice(5) : n)).join(',');
}

function yardError(name: string, what: string, e: unknown): CrtoolsError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new CrtoolsError('CGROUP_YARD', `cgroup hierarchy ${name || 'v2 (unified)'}: ${what}: ${code}`, { exitCode: ExitCode.FAILED, context: { controller: name }, cause: e });
}

export class CgroupYard {
  private readonly fds = new Map<string, number>();
  private readonly dirs = new Map<string, string>();
  /** --cgroup-yard directories made and mounted here: unmounted and removed on close */
  private readonly made: string[] = [];

  constructor(private readonly opts: CgroupYardOptions = {}) {}

  /** Where this process reaches the root of hierarchy `name`, mounting it the first time. */
  dirOf(name: string): string {
    const known = this.dirs.get(name);
    if (known !== undefined) return known;
    const dir = this.opts.yard ? this.fromYard(this.opts.yard, name) : this.detached(name);
    this.dirs.set(name, dir);
    return dir;
  }

  private fromYard(yard: string, name: string): string {
    const dir = path.join(yard, yardDirName(name));
    if (existsSync(dir)) return dir;
    try {
      mkdirSync(dir, 0o700);
    } catch (e) {
      throw yardError(name, `cannot make ${dir} in the cgroup yard`, e);
    }
    try {
      mountSteps(process.pid, [{ source: 'cgroup', target: dir, ...mountArgs(name), flags: 0 }]);
    } catch (e) {
      rmdirSync(dir);
      throw yardError(name, `cannot mount it at ${dir}`, e);
    }
    this.made.push(dir);
    this.opts.log?.(`cgroup yard: ${name || 'unified'} mounted at ${dir}`);
    return dir;
  }

  private detached(name: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), '.crtools.cgyard.'));
    try {
      try {
        mountSteps(process.pid, [{ source: 'cgroup', target: dir, ...mountArgs(name), flags: 0 }]);
      } catch (e) {
        throw yardError(name, 'cannot mount it', e);
      }
      let fd: number;
      try {
        fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      } finally {
        // (opened or not, the mount leaves every namespace at once)
        mountSteps(process.pid, [{ umount: true, target: dir, flags: MNT_DETACH }]);
      }
      this.fds.set(name, fd);
      this.opts.log?.(`cgroup yard: ${name || 'unified'} mounted and detached (fd ${fd})`);
      return `/proc/self/fd/${fd}`;
    } finally {
      rmdirSync(dir);
    }
  }

  /** Every hierarchy let go: descriptors closed, --cgroup-yard mounts made here removed. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.dirs.clear();
    for (const dir of this.made.splice(0).reverse()) {
      try {
        mountSteps(process.pid, [{ umount: true, target: dir, flags: MNT_DETACH }]);
        rmdirSync(dir);
      } catch (e) {
        this.opts.log?.(`cgroup yard: cannot remove ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
  }
}
