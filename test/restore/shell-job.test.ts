/**
 * -j/--shell-job for a job that leads its own session: CRIU's test/others/shell-job/run.py flow
 * (shelljob-driver.py runs it with crtools' criu). The job setsid()s, puts the slave of a pty on
 * 0/1/2 and makes it its controlling terminal; the master stays in the driver, outside the tree.
 * `criu dump -j` writes the slave as CRIU 4.2 does (a PTY tty_info with the job's session and
 * foreground group, no master); `criu restore -j` (not detached) runs in a new session whose
 * controlling terminal is a new pty (TIOCSCTTY through its master, as run.py does). The restored
 * job leads its session again (its own pid), with that new terminal as its controlling terminal
 * and on 0/1/2, answers what is typed at the new master, and exits 0 once the file "running" is
 * gone, which is criu restore's exit code. Round 1's restore has standard input on /dev/null (the
 * terminal is the restore's controlling terminal), round 2's on the new slave (CRIU's choice).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { critDecode, haveCrit, killTree, tmp } from '../dump/helpers.js';
import { criuBin } from '../lib/paths.js';

const DRIVER = path.join(path.dirname(new URL(import.meta.url).pathname), 'shelljob-driver.py');

/** /dev/pts/N of a pty slave's device number */
const ptsPath = (rdev: number) => `/dev/pts/${((rdev >> 8) - 136) * 256 + (rdev & 0xff)}`;

/** The processes the driver started (the job, the restoring sessions, the criu restores): killed by pid if still there. */
function killStarted(dir: string): void {
  const file = path.join(dir, 'pids');
  if (!existsSync(file)) return;
  for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number)) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    // (a pid taken since by another process is left alone)
    if (cmd.includes('shelljob-driver.py') || cmd.includes('criu.js')) killTree(pid);
  }
}

/** The driver run for `rounds` round trips (0: a dump without -j) in dir, whatever it left killed; its JSON report. */
function drive(name: string, rounds: number, timeout: number): { r: ReturnType<typeof spawnSync>; dir: string; out: any } {
  const dir = tmp(name);
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync('/usr/bin/python3', [DRIVER, process.execPath, criuBin, dir, String(rounds)], { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    killStarted(dir);
  }
  let out: any;
  try {
    out = JSON.parse(String(r.stdout));
  } catch {
    out = { error: `no report: ${String(r.stderr)}` };
  }
  return { r, dir, out };
}

describe('-j/--shell-job: a job leading its own session, its terminal a pty whose master is outside the tree (CRIU\'s shell-job run.py)', () => {
  it('dumped with -j and restored with -j, not detached, from a new session on a new pty: it leads its session, the new pty its terminal and on 0/1/2, answers at the new master, twice; exits 0 when told, criu restore with it; crit decodes the images', () => {
    const { r, dir, out } = drive('shelljob-leader', 2, 150_000);
    const err = () => ['restore1.err', 'restore2.err'].map((f) => path.join(dir, f)).filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('');
    expect(r.status, `${String(r.stderr)}${err()}`).toBe(0);
    expect(out.error, err()).toBeUndefined();
    const pid: number = out.pid;
    // before: the job on the first pty, leading its session and its foreground group
    expect(out.before).toMatchObject({ pid, sid: pid, pgid: pid, fg: pid, devtty: 0 });
    const first: number = out.before.ctty;
    expect(out.before.rdev).toEqual([first, first, first]);
    expect(out.rounds).toHaveLength(2);
    for (const [n, rnd] of (out.rounds as any[]).entries()) {
      expect(rnd.dump).toBe(0);
      const pts: number = rnd.pts;
      // the same pid, leading a session of its own again, its group in the foreground of the new
      // terminal, which is its controlling terminal (/dev/tty opens) and 0/1/2; the answer was
      // written through it and read at the new master
      expect(rnd.answer).toEqual({ got: `round${n + 1}`, pid, sid: pid, pgid: pid, fg: pid, ctty: pts, devtty: 0, rdev: [pts, pts, pts] });
      expect(rnd.fds).toEqual([ptsPath(pts), ptsPath(pts), ptsPath(pts)]);
      // as /proc tells it: session, tty_nr, tpgid
      expect(rnd.stat.slice(3, 6).map(Number)).toEqual([pid, pts, pid]);
    }
    // round 1's restore ended as its root was killed by round 2's dump; round 2's with the job: 0
    expect(out.rounds[1].previous_restore).toBe(128 + 9);
    expect(out.restore_exit).toBe(0);
    expect(readFileSync(path.join(dir, 'restore2.status'), 'utf8').trim()).toBe('0');
  });

  it('without -j the dump refuses the terminal by name (exit 4) and the job goes on answering on it', () => {
    const { out } = drive('shelljob-refused', 0, 60_000);
    expect(out.error).toBeUndefined();
    const pid: number = out.pid;
    expect(out.refused.dump).toBe(4);
    const lines = out.refused.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`task ${pid} fd 0 \\(/dev/pts/\\d+\\): a terminal whose master is outside the dumped tree \\(a shell's terminal: -j/--shell-job carries one`));
    expect(out.refused.after).toMatchObject({ got: 'after', pid, sid: pid, ctty: out.before.ctty });
    expect(out.job_exit).toBe(0);
  });

  it.skipIf(!haveCrit)('the images of the job: Debian\'s crit decodes them; the slave\'s tty_info carries the job\'s session and foreground group, no master, as CRIU 4.2 writes it', () => {
    const { dir, out } = drive('shelljob-crit', 1, 120_000);
    expect(out.error).toBeUndefined();
    expect(out.restore_exit).toBe(0);
    const pid: number = out.pid;
    const img = path.join(dir, 'img1');
    const index = (out.before.ctty & 0xff) + ((out.before.ctty >> 8) - 136) * 256;
    const infos = critDecode(path.join(img, 'tty-info.img')).entries;
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ id: index * 2, type: 'PTY', sid: pid, pgrp: pid, rdev: out.before.ctty, pty: { index } });
    const pstree = critDecode(path.join(img, 'pstree.img')).entries;
    expect(pstree).toEqual([expect.objectContaining({ pid, ppid: 0, pgid: pid, sid: pid })]);
    const tty = critDecode(path.join(img, 'files.img')).entries.filter((f: any) => f.type === 'TTY');
    expect(tty).toEqual([expect.objectContaining({ tty: expect.objectContaining({ tty_info_id: index * 2 }) })]);
    const fds = critDecode(path.join(img, `fdinfo-${critDecode(path.join(img, `ids-${pid}.img`)).entries[0].files_id}.img`)).entries;
    expect(fds.filter((f: any) => f.id === tty[0].id).map((f: any) => f.fd)).toEqual([0, 1, 2]);
  });
});
