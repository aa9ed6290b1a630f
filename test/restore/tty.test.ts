/**
 * Terminals: pty pairs held in the tree (master and slave, in one task or several) with their
 * termios, locked termios, window size, packet mode, lock, exclusive mode and index; the
 * session whose controlling terminal a pair is, with its foreground group. Round trips held to
 * the fingerprint (its fds carry what the tty ioctls answer), the images as Debian's crit
 * decodes them, refusals by name, and real programs: a tmux server and script(1).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, criu, critDecode, haveCrit, killAllStarted, killTree, sleep, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { criuBin } from '../lib/paths.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const verdict = (st: string, pid: number) => askVerdict(st, pid, 10_000);

/**
 * A mount namespace unshared from the host's holds a copy of every mount the host had then, other
 * tests' passing ones too (runc's criu-root, cgroup yards), which the restore brings back as the
 * restorer's namespace has them by then: the devpts of the tree's own is checked by itself.
 */
const HOST_MOUNTS_COPIED = { path: /^namespaces\.mnt\[/, why: 'the host\'s mounts copied at unshare come and go with other tests (the tree\'s devpts is checked in its mountinfo)' };

describe('pty pairs and controlling terminals', () => {
  it('pty: a session leader whose terminal is a pty slave it holds, a child in the foreground group; termios, locked termios, window size, packet mode, exclusive mode, a second pair locked in the child; the same indices, twice', () => {
    roundTrip('pty', [], (pid, st) => {
      expect(verdict(st, pid)).toBe('check ok');
      // the session's terminal (tty_nr) and its foreground group (tpgid): the child's
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      expect(Number(stat[4])).toBeGreaterThan(0);
      expect(Number(stat[5])).toBe(child);
    }, true, undefined, [], (dir) => {
      if (!haveCrit) return;
      // Debian's crit decodes what we write: two masters, one slave, each end's tty_info
      const info = critDecode(path.join(dir, 'tty-info.img'));
      expect(info.magic).toBe('TTY_INFO');
      const byId = new Map(info.entries.map((e: any) => [e.id, e]));
      const master = info.entries.find((e: any) => e.id % 2 === 1 && e.packet_mode);
      expect(master).toBeDefined();
      const slave = byId.get(master.id - 1) as any;
      expect(slave).toMatchObject({ type: 'PTY', exclusive: true, sid: master.sid, pgrp: master.pgrp, pty: { index: master.pty.index } });
      expect(master.winsize).toEqual({ ws_row: 42, ws_col: 123, ws_xpixel: 640, ws_ypixel: 480 });
      expect(master.termios_locked.c_lflag).toBe(2); // ICANON
      expect(master.termios.c_cc[0] & 0xff).toBe(2); // VINTR ^B
      expect(info.entries.some((e: any) => e.locked && e.id % 2 === 1)).toBe(true);
      const files = critDecode(path.join(dir, 'files.img')).entries;
      const ttys = files.filter((f: any) => f.type === 'TTY');
      expect(ttys.length).toBe(3);
      for (const t of ttys) {
        const reg = files.find((f: any) => f.id === t.tty.regf_id);
        expect(reg?.reg.name).toMatch(t.tty.tty_info_id % 2 ? /^\/dev\/ptmx$/ : /^\/dev\/pts\/\d+$/);
      }
    });
  });

  it('pty devtty: the child also holds /dev/tty (its session\'s terminal): opened again by it once the session has its terminal back, twice', () => {
    roundTrip('pty', ['devtty'], (pid, st) => {
      expect(verdict(st, pid)).toBe('check ok');
      const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      expect(readlinkSync(`/proc/${child}/fd/23`)).toBe('/dev/tty');
    }, true, undefined, [], (dir) => {
      if (!haveCrit) return;
      const ctty = critDecode(path.join(dir, 'tty-info.img')).entries.find((e: any) => e.type === 'CTTY');
      expect(ctty).toMatchObject({ id: 2012, rdev: 5 << 8 });
    });
  });

  // issue 17: the same in a pid namespace of its own (the init leads the session, its child at
  // pid 2 there the foreground group): tty-info.img carries them as the tree sees them, as CRIU
  // 4.2 writes it; the restore gives them back in the new namespace
  for (const devtty of [false, true]) {
    it(`pty pidns${devtty ? ' devtty' : ''}: in a pid namespace of its own, the session's terminal and its foreground group written as the tree sees them (1, 2) and back, twice`, () => {
      roundTrip('pty', ['pidns', ...(devtty ? ['devtty'] : [])], (pid, st) => {
        expect(verdict(st, pid)).toBe('check ok');
        expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/\nNSsid:\s+\d+\s+1\n/);
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
        expect(Number(stat[3])).toBe(pid); // its session: its own (the init's)
        expect(Number(stat[4])).toBeGreaterThan(0); // a controlling terminal
        expect(Number(stat[5])).toBe(child); // its foreground group: the child's
        expect(readFileSync(`/proc/${child}/status`, 'utf8')).toMatch(/\nNSpgid:\s+\d+\s+2\n/);
      }, true, undefined, [], (dir) => {
        if (!haveCrit) return;
        const info = critDecode(path.join(dir, 'tty-info.img')).entries;
        const master = info.find((e: any) => e.id % 2 === 1 && e.packet_mode);
        expect(master).toMatchObject({ type: 'PTY', sid: 1, pgrp: 2 });
        expect(info.find((e: any) => e.id === master.id - 1)).toMatchObject({ sid: 1, pgrp: 2 });
        if (devtty) expect(info.find((e: any) => e.type === 'CTTY')).toMatchObject({ id: 2012, sid: 1, pgrp: 2 });
        expect(critDecode(path.join(dir, 'pstree.img')).entries).toEqual([
          { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1] },
          { pid: 2, ppid: 1, pgid: 2, sid: 1, threads: [2] },
        ]);
      });
    });
  }

  it('pty mntns: the same in pid and mount namespaces of its own, the pairs of its own devpts (newinstance, opened through /dev/pts/ptmx): the devpts made again, the same indices there, session and foreground group back, twice', () => {
    roundTrip('pty', ['mntns'], (pid, st) => {
      expect(verdict(st, pid)).toBe('check ok');
      expect(readlinkSync(`/proc/${pid}/fd/20`)).toBe('/dev/pts/ptmx');
      expect(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).toMatch(/ \/dev\/pts rw,nosuid,noexec,relatime - devpts devpts rw,mode=620,ptmxmode=666\n/);
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      expect(Number(stat[3])).toBe(pid);
      expect(Number(stat[4])).toBeGreaterThan(0);
    }, true, undefined, [HOST_MOUNTS_COPIED], (dir) => {
      if (!haveCrit) return;
      const master = critDecode(path.join(dir, 'tty-info.img')).entries.find((e: any) => e.id % 2 === 1 && e.packet_mode);
      expect(master).toMatchObject({ type: 'PTY', sid: 1, pgrp: 2 });
      const files = critDecode(path.join(dir, 'files.img')).entries;
      const names = files.filter((f: any) => f.type === 'TTY').map((t: any) => files.find((f: any) => f.id === t.tty.regf_id)?.reg.name);
      expect(names).toContain('/dev/pts/ptmx');
    });
  });

  it('refused by name: a task whose terminal and descriptors are a pty whose master is outside the dumped tree (--check-only lists them, the tree goes on)', () => {
    const w = startWorkload('pty', []);
    const child = Number(/child=(\d+)/.exec(readFileSync(w.state, 'utf8'))![1]);
    const r = criu(['dump', '--check-only', '-t', String(child)]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`task ${child} fd 0 \\(/dev/pts/\\d+\\): a terminal whose master is outside the dumped tree`));
    expect(r.stderr).toMatch(new RegExp(`task ${child}: its controlling terminal /dev/pts/\\d+ is not carried: its master is not in the dumped tree \\(a shell's terminal: -j/--shell-job, or --external tty\\[RDEV:DEV\\]\\)`));
    expect(r.stderr).toMatch(/is not a session leader/);
    // with -j the terminal of the session led from outside is the shell's: carried (criu's standard input at restore)
    const j = criu(['dump', '--check-only', '-j', '-t', String(child)]);
    expect(j.code, j.stderr).toBe(0);
    // a real dump stops at the first (the root leads no session: exit 1), and the tree goes on
    const d = criu(['dump', '-t', String(child), '-D', tmp('pty-outside-img')]);
    expect(d.code).toBe(1);
    expect(d.stderr.trim().split('\n').length).toBe(1);
    expect(w.check(10_000)).toBe('check ok');
    w.kill();
    expect(waitGone(w.pid)).toBe(true);
    expect(waitGone(child)).toBe(true);
  });
});

describe('bytes queued in a pty pair (ptyq)', () => {
  /** tty-data.img as Debian's crit decodes it: the byte count queued at each end, by tty-info id parity (odd: a master) */
  function queuedImages(dir: string): void {
    if (!haveCrit) return;
    const data = critDecode(path.join(dir, 'tty-data.img'));
    expect(data.magic).toBe('TTY_DATA');
    const lens = data.entries.map((e: any) => [e.tty_id % 2 === 1 ? 'master' : 'slave', Buffer.from(e.data, 'base64').length]).sort();
    // the master: the echo of what was typed (CR NL for each CR) then the slave's output; the slave: what was typed
    expect(lens.map((l: [string, number]) => l[0])).toEqual(['master', 'slave']);
    expect(lens.every((l: [string, number]) => l[1] > 0)).toBe(true);
  }

  it('ptyq cooked: both ends hold bytes the line discipline changed on the way (echo, ICRNL, ONLCR): the same bytes wait at each end after the restore, twice', () => {
    roundTrip('ptyq', ['cooked'], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], queuedImages);
  });

  it('ptyq raw: both ends hold bytes (cfmakeraw): the same bytes wait at each end after the restore, twice', () => {
    roundTrip('ptyq', ['raw'], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], queuedImages);
  });

  it('dump --leave-running: the bytes taken to be written are put back, unchanged, at each end', () => {
    const w = startWorkload('ptyq', ['cooked']);
    const d = criu(['dump', '-R', '-t', String(w.pid), '-D', tmp('ptyq-R-img')]);
    expect(d.code, d.stderr).toBe(0);
    expect(verdict(w.state, w.pid)).toBe('check ok');
    w.kill();
    expect(waitGone(w.pid)).toBe(true);
  });

  /** tty-data.img's bytes for the slave as Debian's crit decodes them */
  function slaveBytes(dir: string): Buffer {
    const data = critDecode(path.join(dir, 'tty-data.img'));
    const e = data.entries.find((x: any) => x.tty_id % 2 === 0);
    return Buffer.from(e.data, 'base64');
  }

  it('ptyq canon: a canonical slave holds lines ended by CR, by EOF (one alone too), by EOL, one with ERASE and INTR typed after LNEXT, then a line being typed: each read finds the same line, the line being typed waits, the termios kept, twice', () => {
    roundTrip('ptyq', ['canon'], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], (dir) => {
      queuedImages(dir);
      if (!haveCrit) return;
      // the lines as typed again: "in\n", "1" EOF, EOF, "a;", "x" LNEXT DEL "y" LNEXT ^C "z\n", then "2z\t"
      expect(slaveBytes(dir)).toEqual(Buffer.from('in\n1\x04\x04a;x\x16\x7fy\x16\x03z\n2z\t', 'latin1'));
    });
  });

  it('ptyq ctty: the same lines at the session\'s controlling terminal, read through /dev/tty: the terminal and its lines come back, twice', () => {
    roundTrip('ptyq', ['ctty'], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], queuedImages);
  });

  it('ptyq lines: plain lines in canonical mode are the bytes CRIU 4.2 writes (the lines one after the other), twice', () => {
    roundTrip('ptyq', ['lines'], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], (dir) => {
      queuedImages(dir);
      if (haveCrit) expect(slaveBytes(dir).toString('latin1')).toBe('in\n1\na;');
    });
  });

  it('dump --leave-running and a failed dump: a canonical slave\'s lines and the line being typed are put back as they were', () => {
    const w = startWorkload('ptyq', ['canon']);
    const d = criu(['dump', '-R', '-t', String(w.pid), '-D', tmp('ptyq-canon-R-img')]);
    expect(d.code, d.stderr).toBe(0);
    expect(verdict(w.state, w.pid)).toBe('check ok');
    // a dump that fails after the bytes are taken: its tty-data.img cannot be put in place
    const bad = tmp('ptyq-canon-fail-img');
    mkdirSync(path.join(bad, 'tty-data.img'), { recursive: true });
    const f = criu(['dump', '-t', String(w.pid), '-D', bad, '-o', 'dump.log', '-v4']);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/EISDIR.*tty-data\.img/);
    expect(readFileSync(path.join(bad, 'dump.log'), 'utf8')).toMatch(/canonical: 5 line\(s\), 3 byte\(s\) of a line being typed/);
    expect(verdict(w.state, w.pid)).toBe('check ok');
    w.kill();
    expect(waitGone(w.pid)).toBe(true);
  });
});

describe('hung-up terminals (ptyhup)', () => {
  it('ptyhup: slaves whose master was closed (one the session\'s terminal then, one held by a child too) come back hung up at the same /dev/pts/N, beside a live pair with a line queued, twice; tty-info.img has no termios for them, as CRIU 4.2 writes it', () => {
    roundTrip('ptyhup', [], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], (dir) => {
      if (!haveCrit) return;
      const infos = critDecode(path.join(dir, 'tty-info.img')).entries as any[];
      const hung = infos.filter((e) => !e.termios);
      expect(hung.length).toBe(1);
      expect(hung[0]).toMatchObject({ type: 'PTY', sid: 0, pgrp: 0, locked: false, packet_mode: false });
      expect(hung[0].id % 2).toBe(0);
      expect(infos.filter((e) => e.termios).length).toBe(2);
    });
  });
});

describe('-j/--shell-job: a job whose terminal is its shell\'s, outside the tree', () => {
  it('a job of a "shell" (a session leader holding the pty master, the slave its terminal) dumped and restored with -j from that terminal: the job is criu\'s standard input\'s terminal again and goes on writing to it', () => {
    const dir = tmp('shelljob');
    const out = path.join(dir, 'terminal');
    const result = path.join(dir, 'result');
    // the "shell": leads its session with the slave as its terminal, starts the job (a counting
    // loop in a group of its own, stdio on the terminal), logs what the job writes, then runs
    // criu dump -j and criu restore -j -d itself, from its terminal (criu in its session)
    const prog = [
      'import os, sys, fcntl, termios, subprocess, threading, time',
      'm, s = os.openpty()',
      'fcntl.ioctl(s, termios.TIOCSCTTY, 0)',
      `out = open(${JSON.stringify(out)}, "ab", buffering=0)`,
      'def pump():',
      '    while True:',
      '        try: d = os.read(m, 4096)',
      '        except OSError: return',
      '        out.write(d)',
      'threading.Thread(target=pump, daemon=True).start()',
      "job = subprocess.Popen(['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done'], stdin=s, stdout=s, stderr=s, process_group=0)",
      'time.sleep(0.8)',
      `img = ${JSON.stringify(path.join(dir, 'img'))}`,
      `crit = [${JSON.stringify(process.execPath)}, ${JSON.stringify(criuBin)}]`,
      "d = subprocess.run(crit + ['dump', '-j', '-t', str(job.pid), '-D', img, '-o', 'dump.log', '-v4'], stdin=s, capture_output=True)",
      'job.wait()',
      "for k in [f[5:-4] for f in os.listdir(img) if f.startswith('core-')]:",
      '    for _ in range(100):',
      "        if not os.path.exists('/proc/' + k): break",
      '        time.sleep(0.05)',
      "r = subprocess.run(crit + ['restore', '-j', '-d', '-D', img, '-o', 'restore.log', '-v4'], stdin=s, stdout=s, stderr=subprocess.PIPE)",
      `open(${JSON.stringify(result)}, "w").write("job=%d dump=%d restore=%d %s %s" % (job.pid, d.returncode, r.returncode, d.stderr.decode().strip().replace(chr(10), " "), r.stderr.decode().strip().replace(chr(10), " ")))`,
      'while True: time.sleep(1)',
    ].join('\n');
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', prog]);
    let job = 0;
    try {
      expect(waitFor(() => existsSync(result) && readFileSync(result, 'utf8').length > 0, 30_000)).toBe(true);
      const res = readFileSync(result, 'utf8');
      expect(res).toMatch(/^job=\d+ dump=0 restore=0/);
      job = Number(/job=(\d+)/.exec(res)![1]);
      const ticks = () => [...readFileSync(out, 'utf8').matchAll(/tick(\d+)/g)].map((x) => Number(x[1])).pop() ?? 0;
      const at = ticks();
      expect(waitFor(() => ticks() >= at + 3)).toBe(true);
      // the job's descriptors are on the shell's terminal again, and it is the job's terminal
      expect(readlinkSync(`/proc/${job}/fd/1`)).toMatch(/^\/dev\/pts\/\d+$/);
      const st = readFileSync(`/proc/${job}/stat`, 'utf8').split(') ')[1]!.split(' ');
      expect(Number(st[3])).toBe(w.pid); // its session: the shell's
      expect(Number(st[4])).toBeGreaterThan(0); // a controlling terminal
    } finally {
      if (job) killTree(job);
      w.kill();
      waitGone(w.pid);
      if (job) waitGone(job);
    }
  });
});

/** The newest value a counting loop wrote to a file (the last number in it). */
function lastNumber(text: string): number {
  const m = text.match(/(\d+)\s*$/);
  return m ? Number(m[1]) : -1;
}

function waitFor(cond: () => boolean, ms = 10_000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    sleep(50);
  }
  return cond();
}

describe.skipIf(!existsSync('/usr/bin/tmux'))('tmux: a detached server with a shell counting in its pane', () => {
  it('the server tree is dumped by its pid and restored; capture-pane shows the counter going on, send-keys still works', () => {
    const dir = tmp('tmux');
    const sock = path.join(dir, 'sock');
    const tmux = (...a: string[]) => spawnSync('/usr/bin/tmux', ['-S', sock, ...a], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, TERM: 'xterm' } });
    // (tmux hands the command to sh -c: single quotes keep $i for the inner shell)
    const loop = "sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done'";
    expect(tmux('new-session', '-d', '-x', '100', '-y', '30', loop).status).toBe(0);
    // a second window where cat echoes what is typed
    expect(tmux('new-window', '-d', 'cat').status).toBe(0);
    const pid = Number(tmux('display-message', '-p', '#{pid}').stdout.trim());
    expect(pid).toBeGreaterThan(1);
    const pane = (w = '0') => tmux('capture-pane', '-p', '-t', `:${w}`).stdout;
    const count = () => lastNumber(pane().trimEnd());
    try {
      expect(waitFor(() => count() >= 3)).toBe(true);
      for (let round = 0; round < 2; round++) {
        const img = tmp(`tmux-img-${round}`);
        const tree = treePids(pid);
        const d = criu(['dump', '-t', String(pid), '-D', img, '-o', 'dump.log', '-v4']);
        expect(d.code, d.stderr).toBe(0);
        for (const p of tree) expect(waitReaped(p)).toBe(true);
        const r = restoreDir(img, ['-o', 'restore.log', '-v4']);
        expect(r.code, r.stderr).toBe(0);
        const at = count();
        expect(waitFor(() => count() >= at + 3)).toBe(true);
      }
      // keys typed into a pane reach its program through its terminal: cat echoes them
      expect(tmux('send-keys', '-t', ':1', 'typed-after-restore', 'Enter').status).toBe(0);
      expect(waitFor(() => (pane('1').match(/typed-after-restore/g) ?? []).length === 2)).toBe(true);
    } finally {
      const pids = treePids(pid);
      killTree(pid);
      for (const p of pids) waitGone(p);
    }
  });
});

describe.skipIf(!existsSync('/usr/bin/script'))('script(1): a loop typescripted into a file', () => {
  it('script -qfc running a counting loop, detached with setsid, round-tripped twice; its output file keeps growing', () => {
    const dir = tmp('script');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'out');
    const w = startWorkload('launch', ['/usr/bin/script', '-qfc', 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done', out]);
    const grown = () => (existsSync(out) ? lastNumber(readFileSync(out, 'utf8')) : -1);
    try {
      expect(waitFor(() => grown() >= 3)).toBe(true);
      for (let round = 0; round < 2; round++) {
        const img = tmp(`script-img-${round}`);
        const tree = treePids(w.pid);
        const d = criu(['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4']);
        expect(d.code, d.stderr).toBe(0);
        for (const p of tree) expect(waitReaped(p)).toBe(true);
        const r = restoreDir(img, ['-o', 'restore.log', '-v4']);
        expect(r.code, r.stderr).toBe(0);
        const at = grown();
        expect(waitFor(() => grown() >= at + 3)).toBe(true);
      }
    } finally {
      const pids = treePids(w.pid);
      killTree(w.pid);
      for (const p of pids) waitGone(p);
    }
  });
});
