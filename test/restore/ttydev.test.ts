/**
 * Terminals other than the tree's own pty pairs (issue 15; workload test/workloads/ttydev.c):
 * /dev/console, a virtual console and a serial line held open (zdtm static/console, static/vt),
 * written as CRIU 4.2 writes them (tty-info.img CONSOLE, VT and SERIAL, a REG entry with the path)
 * and opened again by path (the serial line: /dev/ttyS0's device, 4:64, set to settings of the
 * workload's own and put back as they were after the test; CRIU 4.2 takes no UART port for a
 * terminal, so it refuses to dump it and to restore crtools' images of it); a pty slave whose master stays outside the tree (a container's console), dumped with
 * --external tty[RDEV:DEV] and restored from --inherit-fd fd[N]:tty[RDEV:DEV], on the command
 * line and through RPC, and refused by name without them. Round trips twice with the fingerprint
 * harness, Debian's crit decoding the images, CRIU 4.2 on either side. A machine without the
 * device skips the test, saying so.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askVerdict, critDecode, criu, expectDumpRefused, haveCrit, killAllStarted, killTree, ourCritDecode, readState, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { criuBin } from '../lib/paths.js';
import type { ExpectedChange } from '@crtools/inspect';
import { CRIU, runBy } from './criu-ref.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const decode = (f: string) => (haveCrit ? critDecode(f) : ourCritDecode(f));

/** Can this machine open the device (5:1, 4:5)? undefined when it can, else why not. */
function missing(major: number, minor: number): string | undefined {
  const dir = tmp('ttydev-probe');
  const node = path.join(dir, 'node');
  try {
    rmSync(node, { force: true });
    spawnSync('mkdir', ['-p', dir]);
    const r = spawnSync('mknod', [node, 'c', String(major), String(minor)]);
    if (r.status !== 0) return `mknod ${major}:${minor} failed: ${r.stderr}`;
    // (non-blocking: a serial line without CLOCAL would wait for its carrier)
    const fd = openSync(node, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
    closeSync(fd);
    return undefined;
  } catch (e) {
    return `the device ${major}:${minor} cannot be opened here (${(e as NodeJS.ErrnoException).code})`;
  } finally {
    rmSync(node, { force: true });
  }
}

/** tty-info.img and files.img of a dump: the terminal's info and its file entries */
function ttyImages(dir: string): { infos: any[]; files: any[] } {
  return { infos: decode(path.join(dir, 'tty-info.img')).entries, files: decode(path.join(dir, 'files.img')).entries };
}

/**
 * A serial line's settings as they are (stty -g, and its window size), put back by `restore` —
 * the serial tests change those of this machine's /dev/ttyS0 (a VM's console: no byte is written).
 */
const SERIAL_DEV = '/dev/ttyS0';
const serialSettings = {
  saved: undefined as { g: string; size: string[] } | undefined,
  save(): void {
    const g = spawnSync('stty', ['-F', SERIAL_DEV, '-g'], { encoding: 'utf8' });
    const size = spawnSync('stty', ['-F', SERIAL_DEV, 'size'], { encoding: 'utf8' });
    if (g.status !== 0 || size.status !== 0) throw new Error(`stty -F ${SERIAL_DEV}: ${g.stderr}${size.stderr}`);
    this.saved = { g: g.stdout.trim(), size: size.stdout.trim().split(/\s+/) };
  },
  restore(): void {
    if (!this.saved) return;
    const [rows, cols] = this.saved.size;
    // (GNU stty reads the settings back at once and may find the speed change not through yet,
    // exiting 1 with them set: what counts is what -g and size read afterwards)
    for (const args of [[this.saved.g], ['rows', rows!, 'cols', cols!]]) spawnSync('stty', ['-F', SERIAL_DEV, ...args], { encoding: 'utf8' });
    const size = spawnSync('stty', ['-F', SERIAL_DEV, 'size'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
    if (this.now() !== this.saved.g || size.join(' ') !== this.saved.size.join(' ')) throw new Error(`${SERIAL_DEV}: its settings could not be put back (${this.now()}, ${size.join('x')}; were ${this.saved.g}, ${this.saved.size.join('x')})`);
  },
  /** the settings as saved (stty -g) */
  now(): string {
    return spawnSync('stty', ['-F', SERIAL_DEV, '-g'], { encoding: 'utf8' }).stdout.trim();
  },
};

for (const [mode, major, minor, type, infoId, node] of [['console', 5, 1, 'CONSOLE', 2004, 'console'], ['vt', 4, 5, 'VT', 2008, 'tty5'], ['serial', 4, 64, 'SERIAL', 2020, 'ttyS0']] as const) {
  const why = mode === 'serial' && !existsSync(SERIAL_DEV) ? `no ${SERIAL_DEV} on this machine` : missing(major, minor);
  const title = mode === 'vt' ? 'a virtual console' : mode === 'serial' ? `a serial line (${SERIAL_DEV}'s device)` : '/dev/console';
  describe.skipIf(!!why)(`${title} (${major}:${minor}) held open${why ? ` (skipped: ${why})` : ''}`, () => {
    if (mode === 'serial') {
      // (even when a test fails: the device's own settings back after each, and checked at the end)
      beforeAll(() => serialSettings.save());
      afterEach(() => serialSettings.restore());
      afterAll(() => {
        serialSettings.restore();
        expect(serialSettings.now()).toBe(serialSettings.saved!.g);
      });
    }

    it(`${mode}: the same device at the same path, termios and window size kept, twice; tty-info ${type} (id ${infoId}) and a REG entry with the path, decoded by crit`, () => {
      const dir = tmp(`ttydev-${mode}`);
      roundTrip('ttydev', [mode, dir], (pid, st) => expect(askVerdict(st, pid)).toBe(`check ok ${mode}`), true, undefined, [], (img) => {
        const { infos, files } = ttyImages(img);
        expect(infos).toHaveLength(1);
        expect(infos[0]).toMatchObject({ id: infoId, type, sid: 0, pgrp: 0, locked: false, packet_mode: false });
        expect(Number(infos[0].rdev)).toBe(major * 256 + minor);
        expect(infos[0].termios).toBeDefined();
        expect(infos[0].winsize).toBeDefined();
        const tty = files.find((f: any) => f.type === 'TTY');
        expect(tty.tty.tty_info_id).toBe(infoId);
        const reg = files.find((f: any) => f.id === tty.tty.regf_id);
        expect(reg.reg.name).toBe(path.join(dir, node));
      });
    });

    if (mode === 'vt') {
      it('vt2: two different virtual consoles in one tree are refused by name (CRIU\'s images keep one tty_info for all), --check-only too; the tree goes on', () => {
        const w = startWorkload('ttydev', ['vt2', tmp('ttydev-vt2')]);
        try {
          const want = new RegExp(`^criu: task ${w.pid} fd 4 \\(.*/tty6\\): a second virtual console \\(4:6; task ${w.pid} fd 3 holds another\\): CRIU's images keep one for all of them$`);
          expectDumpRefused(w.pid, want, 'ttydev-vt2');
          expect(askVerdict(w.state, w.pid)).toBe('check ok vt2');
        } finally {
          killTree(w.pid);
          expect(waitGone(w.pid)).toBe(true);
        }
      });

      it('vtctty: the virtual console the session leader\'s controlling terminal, its own group in the foreground: taken again by it, twice; tty-info VT with the session', () => {
        roundTrip('ttydev', ['vtctty', tmp('ttydev-vtctty')], (pid, st) => expect(askVerdict(st, pid)).toBe('check ok vtctty'), true, undefined, [], (img, pid) => {
          expect(ttyImages(img).infos[0]).toMatchObject({ id: infoId, type, sid: pid, pgrp: pid });
        });
      });
    }

    it(`${mode}: a restore where the path is another device now is refused by name (exit 4), nothing left running`, () => {
      const dir = tmp(`ttydev-${mode}-moved`);
      const w = startWorkload('ttydev', [mode, dir]);
      const img = tmp(`ttydev-${mode}-moved-img`);
      const d = criu(['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      rmSync(path.join(dir, node));
      expect(spawnSync('mknod', ['-m', '600', path.join(dir, node), 'c', '1', '3']).status).toBe(0);
      const r = restoreDir(img);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr.trim()).toMatch(new RegExp(`was opened at ${path.join(dir, node).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, device ${major}:${minor}, which is device 1:3 now`));
      expect(existsSync(`/proc/${w.pid}`)).toBe(false);
    });

    if (mode === 'serial') {
      it('serial: the restore sets the line\'s settings again (the device\'s own put back between dump and restore): check ok; tty-info SERIAL with them', () => {
        const dir = tmp('ttydev-serial-reset');
        const w = startWorkload('ttydev', ['serial', dir]);
        const img = tmp('ttydev-serial-reset-img');
        try {
          const d = criu(['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log']);
          expect(d.code, d.stderr).toBe(0);
          expect(waitReaped(w.pid)).toBe(true);
          const info = ttyImages(img).infos[0];
          // 38400 baud (B38400 0o17 in CBAUD), ICANON and ECHO off, VMIN 3 and VTIME 7 (c_cc[6], [5]), 41x97
          expect(info.termios.c_cflag & 0o10017).toBe(0o17);
          expect(info.termios.c_lflag & 0o12).toBe(0);
          expect((info.termios.c_cc[1] >>> 16) & 0xff).toBe(3);
          expect((info.termios.c_cc[1] >>> 8) & 0xff).toBe(7);
          expect(info.winsize).toMatchObject({ ws_row: 41, ws_col: 97 });
          serialSettings.restore();
          expect(serialSettings.now()).toBe(serialSettings.saved!.g);
          const r = restoreDir(img);
          expect(r.code, r.stderr).toBe(0);
          expect(askVerdict(w.state, w.pid)).toBe('check ok serial');
        } finally {
          killTree(w.pid);
          expect(waitGone(w.pid)).toBe(true);
        }
      });
    }

    if (mode === 'serial') describe.skipIf(!CRIU)(`a UART serial line and CRIU 4.2 (${CRIU ?? 'no CRIU 4.2 binary here'}), which takes none for a terminal (only 188:*, 204:* are its serial lines)`, () => {
      it('serial: CRIU 4.2 refuses to dump it (an unsupported character device), the tree goes on', () => {
        const w = startWorkload('ttydev', ['serial', tmp('ttydev-serial-CRIU')]);
        const img = tmp('ttydev-serial-CRIU-img');
        try {
          const r = spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4'], { encoding: 'utf8', timeout: 30_000 });
          expect(r.status).not.toBe(0);
          expect(readFileSync(path.join(img, 'dump.log'), 'utf8')).toMatch(/Can't dump file 3 of that type \[20600\] \(chr 4:64\)/);
          expect(askVerdict(w.state, w.pid)).toBe('check ok serial');
        } finally {
          killTree(w.pid);
          expect(waitGone(w.pid)).toBe(true);
        }
      });
      it('serial: dumped by crtools, CRIU 4.2\'s restore refuses the SERIAL entry (no driver for 4:64), nothing left running', () => {
        const w = startWorkload('ttydev', ['serial', tmp('ttydev-serial-us')]);
        const img = tmp('ttydev-serial-us-img');
        try {
          runBy('us', img, ['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4']);
          expect(waitReaped(w.pid)).toBe(true);
          expect(ttyImages(img).infos[0]).toMatchObject({ id: infoId, type });
          const r = spawnSync(CRIU!, ['restore', '-D', img, '-d', '-o', 'restore.log', '-v4'], { encoding: 'utf8', timeout: 30_000 });
          expect(r.status).not.toBe(0);
          expect(readFileSync(path.join(img, 'restore.log'), 'utf8')).toMatch(/Unable to find a tty driver \(rdev 0x440 /);
          // (the tasks CRIU made and killed are gone once reaped: not at once)
          expect(waitGone(w.pid)).toBe(true);
        } finally {
          killTree(w.pid);
        }
      });
    });

    if (mode !== 'serial') describe.skipIf(!CRIU)(`between crtools and CRIU 4.2 (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
      for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
        it(`${mode}: dumped by ${by}, restored by ${to}: check ok`, () => {
          const dir = tmp(`ttydev-${mode}-${by}`);
          const w = startWorkload('ttydev', [mode, dir]);
          const img = tmp(`ttydev-${mode}-${by}-img`);
          try {
            runBy(by, img, ['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4']);
            expect(waitReaped(w.pid)).toBe(true);
            expect(ttyImages(img).infos[0]).toMatchObject({ id: infoId, type });
            runBy(to, img, ['restore', '-D', img, '-d', '-o', 'restore.log', '-v4']);
            expect(askVerdict(w.state, w.pid)).toBe(`check ok ${mode}`);
          } finally {
            killTree(w.pid);
            expect(waitGone(w.pid)).toBe(true);
          }
        });
      }
    });
  });
}

describe('a terminal whose master stays outside the tree (--external tty[RDEV:DEV], --inherit-fd fd[N]:tty[RDEV:DEV])', () => {
  /** the workload: the tree (its pid), the holder of the master outside it, the slave's path and key */
  function startExt(name: string) {
    const w = startWorkload('ttydev', ['ext', tmp(name)]);
    const m = /holder=(\d+) pts=(\S+)/.exec(readState(w.state))!;
    const holder = Number(m[1]);
    const pts = m[2]!;
    const st = statSync(pts);
    return { w, holder, pts, key: `tty[${st.rdev.toString(16)}:${st.dev.toString(16)}]` };
  }

  it('refused by name without --external (exit 4, the key to name it given), the tree goes on; a restore without --inherit-fd refused by name', () => {
    const { w, holder, key } = startExt('ttyext-refused');
    try {
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp('ttyext-refused-img'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toContain(`a terminal whose master is outside the dumped tree (a shell's terminal: -j/--shell-job carries one; --external ${key} names it external)`);
      expect(treePids(w.pid)).toEqual([w.pid]);
      expect(askVerdict(w.state, w.pid)).toBe('check ok ext');
      const img = tmp('ttyext-noinherit-img');
      const e = criu(['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '--external', key]);
      expect(e.code, e.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const r = restoreDir(img);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain(`an external terminal (dumped with --external tty[...]) is restored only from a descriptor handed over: --inherit-fd 'fd[N]:${key}'`);
      expect(existsSync(`/proc/${w.pid}`)).toBe(false);
    } finally {
      killTree(w.pid);
      killTree(holder);
    }
  });

  it('round trip twice: the session leader gets its terminal back from the descriptor handed over (same pty, its controlling terminal, foreground group, termios, window size); tty-info EXT_TTY with no path, decoded by crit', () => {
    // the pty is known once the workload runs: the dump's --external, the restore's --inherit-fd
    // and the descriptor handed over are filled in then (the arrays the round trip reads)
    const dumpArgs: string[] = [];
    const restoreArgs: string[] = [];
    const fds: number[] = [];
    let holder = 0;
    let key = '';
    const ready = (pid: number) => {
      if (fds.length) return true;
      const pts = readlinkSync(`/proc/${pid}/fd/0`);
      if (!pts.startsWith('/dev/pts/')) return false;
      holder = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      const st = statSync(pts);
      key = `tty[${st.rdev.toString(16)}:${st.dev.toString(16)}]`;
      dumpArgs.push('--external', key);
      restoreArgs.push('--inherit-fd', `fd[3]:${key}`);
      fds.push(openSync(pts, constants.O_RDWR | constants.O_NOCTTY));
      return true;
    };
    try {
      // (the root's parent is the holder of the master, outside the tree: restored detached, the
      // root is the subreaper's child, as any restored root)
      const parent: ExpectedChange[] = [{ path: /^tasks\[\d+\]\.(stat\.ppid|status\.PPid)$/, why: 'the parent of the dumped root was the holder of the master, outside the tree' }];
      roundTrip('ttydev', ['ext', tmp('ttyext')], (pid, st) => expect(askVerdict(st, pid)).toBe('check ok ext'), true, ready, parent, (img) => {
        const { infos, files } = ttyImages(img);
        // one open file on the slave (fds 0, 1, 2): an EXT_TTY of CRIU's first external index, no path
        expect(infos).toHaveLength(1);
        expect(infos[0]).toMatchObject({ id: 2026, type: 'EXT_TTY', locked: false, packet_mode: false });
        expect(`tty[${Number(infos[0].rdev).toString(16)}:${Number(infos[0].dev).toString(16)}]`).toBe(key);
        expect(Number(infos[0].sid)).toBeGreaterThan(0);
        expect(infos[0].pgrp).toBe(infos[0].sid);
        expect(infos[0].winsize).toMatchObject({ ws_row: 33, ws_col: 101 });
        const ttys = files.filter((f: any) => f.type === 'TTY');
        expect(ttys).toHaveLength(1);
        expect(ttys[0].tty.tty_info_id).toBe(2026);
        expect(ttys[0].tty.regf_id).toBeUndefined();
        expect(files.filter((f: any) => f.type === 'REG' && String(f.reg.name).startsWith('/dev/pts/'))).toEqual([]);
      }, dumpArgs, restoreArgs, false, fds);
    } finally {
      for (const fd of fds) closeSync(fd);
      if (holder) killTree(holder);
    }
  });

  /** the ext workload, dumped by `by` with --external, restored by `to` from --inherit-fd */
  function across(by: 'CRIU' | 'us' | 'rpc', to: 'CRIU' | 'us' | 'rpc'): void {
    const { w, holder, pts, key } = startExt(`ttyext-${by}-${to}`);
    const img = tmp(`ttyext-${by}-${to}-img`);
    const fd = openSync(pts, constants.O_RDWR | constants.O_NOCTTY);
    try {
      if (by === 'rpc') expect(pycriu('dump', img, String(w.pid), 'external', key)).toEqual({ ok: true, restored: false });
      else runBy(by, img, ['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4', '--external', key]);
      expect(waitReaped(w.pid)).toBe(true);
      expect(ttyImages(img).infos[0]).toMatchObject({ type: 'EXT_TTY' });
      if (to === 'rpc') {
        expect(pycriu('restore', img, 'inherit', pts, key)).toMatchObject({ ok: true, pid: w.pid });
      } else {
        const bin = to === 'CRIU' ? [CRIU!] : [process.execPath, criuBin];
        const r = spawnSync(bin[0]!, [...bin.slice(1), 'restore', '-D', img, '-d', '-o', 'restore.log', '-v4', '--inherit-fd', `fd[3]:${key}`], { encoding: 'utf8', timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe', fd] });
        expect(r.status, r.stderr).toBe(0);
      }
      expect(askVerdict(w.state, w.pid)).toBe('check ok ext');
    } finally {
      closeSync(fd);
      killTree(w.pid);
      killTree(holder);
      expect(waitGone(w.pid)).toBe(true);
    }
  }

  describe.skipIf(!havePycriu)("through RPC (Debian's pycriu against criu swrk): CriuOpts external at dump, inherit_fd at restore", () => {
    it('dumped and restored over RPC: check ok', () => across('rpc', 'rpc'));
  });

  describe.skipIf(!CRIU)(`between crtools and CRIU 4.2 (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
    it('dumped by CRIU 4.2 with --external, restored by crtools with --inherit-fd: check ok', () => across('CRIU', 'us'));
    it('dumped by crtools with --external, restored by CRIU 4.2 with --inherit-fd: check ok', () => across('us', 'CRIU'));
  });
});

const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(path.dirname(new URL(import.meta.url).pathname), '../rpc/pycriu-driver.py');
const havePycriu = spawnSync(PYTHON, ['-c', 'import pycriu.criu, pycriu.rpc_pb2'], { stdio: 'ignore' }).status === 0;

/** Debian's pycriu driving our criu swrk (test/rpc/pycriu-driver.py) */
function pycriu(...args: string[]): Record<string, any> {
  const r = spawnSync(PYTHON, [DRIVER, criuBin, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`pycriu driver failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
