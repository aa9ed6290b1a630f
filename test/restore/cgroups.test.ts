/**
 * cgroup membership (crtools issue 17): a sleeper in cgroups of its own (cgroup v1 pids with a
 * limit, and the v2 unified hierarchy: this machine kind is hybrid) is dumped by CRIU 4.2 with
 * --manage-cgroups and restored by crtools with --manage-cgroups: it comes back in exactly the
 * cgroups it was in (/proc/PID/cgroup equal), whether they are there (soft: left as they are) or
 * gone (soft: made again with the dumped limit), or under another root (--cgroup-root); a mode
 * that makes no directory (none) fails with them gone, by name, leaving no process and no
 * directory. Runs where CRIU 4.2 is (env CRIU, else /tmp/criu-4.2/criu/criu); every cgroup made
 * here is removed at the end, every process killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, askVerdict, criu, killAllStarted, killTree, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { CRIU } from './criu-ref.js';

/** The whole hierarchy of cgroup v1 controller `ctrl` ('' : cgroup v2), as this process sees it. */
function hierarchy(ctrl: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    const f = line.split(' ');
    const [fstype, , superOptions] = f.slice(f.indexOf('-') + 1);
    if (f[3] !== '/') continue;
    if (ctrl === '' ? fstype === 'cgroup2' : fstype === 'cgroup' && superOptions!.split(',').includes(ctrl)) return f[4];
  }
  return undefined;
}

const PIDS = hierarchy('pids');
const V2 = hierarchy('');
const missing = [!CRIU && 'CRIU 4.2 (env CRIU)', !PIDS && 'a cgroup v1 pids hierarchy', !V2 && 'a cgroup v2 hierarchy'].filter(Boolean).join(', ');
const name = `crtools-cg-${process.pid}`;
const dirs = PIDS && V2 ? [`${PIDS}/${name}`, `${V2}/${name}`, `${PIDS}/${name}-moved`] : [];
const pids = new Set<number>();

function rmCgroups(): void {
  for (const d of [...dirs].reverse()) {
    if (!existsSync(d)) continue;
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(d);
        break;
      } catch {
        spawnSync('sleep', ['0.02']);
      }
    }
  }
}

afterAll(() => {
  for (const p of pids) if (alive(p)) killTree(p);
  killAllStarted();
  for (const p of pids) waitGone(p);
  rmCgroups();
});

const cgroupOf = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, 'utf8');

describe.skipIf(!!missing)(`cgroup membership restored by crtools from CRIU 4.2's --manage-cgroups dump${missing ? ` (skipped: no ${missing})` : ''}`, () => {
  let images = '';
  let before = '';
  let pid = 0;
  let state = '';

  it('CRIU 4.2 dumps a sleeper in a pids cgroup (pids.max 77) and a v2 cgroup of its own', () => {
    const w = startWorkload('sleeper', []);
    pid = w.pid;
    state = w.state;
    pids.add(pid);
    for (const d of dirs.slice(0, 2)) mkdirSync(d);
    writeFileSync(`${PIDS}/${name}/pids.max`, '77');
    for (const d of dirs.slice(0, 2)) writeFileSync(`${d}/cgroup.procs`, String(pid));
    before = cgroupOf(pid);
    expect(before).toMatch(new RegExp(`^\\d+:pids:/${name}$`, 'm'));
    expect(before).toContain(`0::/${name}\n`);
    images = tmp('cg-img');
    const d = spawnSync(CRIU!, ['dump', '-t', String(pid), '-D', images, '-o', 'dump.log', '--manage-cgroups'], { encoding: 'utf8', timeout: 30_000 });
    expect(d.status, `CRIU dump: ${d.stderr}`).toBe(0);
    expect(waitReaped(pid)).toBe(true);
  });

  const restoreOnce = (extra: string[]) => {
    const r = criu(['restore', '-D', images, '-o', 'restore.log', '-d', '--manage-cgroups', ...extra]);
    expect(r.code, `${r.stderr}${existsSync(`${images}/restore.log`) ? readFileSync(`${images}/restore.log`, 'utf8') : ''}`).toBe(0);
    expect(alive(pid)).toBe(true);
  };
  // (reaped, not only dead: the next restore needs its pid free)
  const stop = () => {
    killTree(pid);
    expect(waitReaped(pid)).toBe(true);
  };

  for (const cgroups of ['there (soft: left as they are)', 'gone (soft: made again, the dumped pids.max with them)']) {
    it(`restored with its cgroups ${cgroups}: in the same cgroups, answering`, () => {
      if (cgroups.startsWith('gone')) for (const d of dirs.slice(0, 2).reverse()) rmdirSync(d);
      restoreOnce([]);
      expect(cgroupOf(pid)).toBe(before);
      expect(readFileSync(`${PIDS}/${name}/pids.max`, 'utf8').trim()).toBe('77');
      expect(askVerdict(state, pid)).toMatch(/^check ok/);
      stop();
    });
  }

  it('--cgroup-root pids:/NAME-moved: the pids cgroup made there, the others as dumped', () => {
    restoreOnce(['--cgroup-root', `pids:/${name}-moved`]);
    const now = cgroupOf(pid);
    expect(now).toMatch(new RegExp(`^\\d+:pids:/${name}-moved$`, 'm'));
    expect(now.replace(`pids:/${name}-moved`, `pids:/${name}`)).toBe(before);
    expect(readFileSync(`${PIDS}/${name}-moved/pids.max`, 'utf8').trim()).toBe('77');
    stop();
    rmdirSync(`${PIDS}/${name}-moved`);
  });

  it('--manage-cgroups=none with the cgroups gone: refused by name, no process, no directory made', () => {
    rmCgroups();
    const r = criu(['restore', '-D', images, '-o', 'restore-none.log', '-d', '--manage-cgroups=none']);
    expect(r.code).toBe(1);
    expect(readFileSync(`${images}/restore-none.log`, 'utf8')).toMatch(new RegExp(`Error \\(restore\\): cgroups: .*/${name} does not exist \\(--manage-cgroups=none makes none\\)`));
    expect(alive(pid)).toBe(false);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
  });
});
