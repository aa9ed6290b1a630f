import { describe, expect, it } from 'vitest';
import { CONSOLE_INFO_ID, CTTY_INFO_ID, extTtyInfoId, ptyInfoId, SERIAL_INFO_ID, termiosBytes, termiosEntry, ttyDevice, VT_INFO_ID } from '@crtools/images/facts';
import { TtyPlans, type TtyFilePlan } from './plan.js';

/** the kernel's struct termios of a fresh pty, with VINTR ^B */
function kernelTermios(): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(0x500, 0);
  b.writeUInt32LE(0x5, 4);
  b.writeUInt32LE(0xbf, 8);
  b.writeUInt32LE(0x8a3b, 12);
  Buffer.from([2, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0]).copy(b, 17);
  return b;
}

describe('termios_entry (CRIU packs c_cc four bytes a word)', () => {
  it('round-trips the kernel struct, c_cc as CRIU 4.2 writes it', () => {
    const e = termiosEntry(kernelTermios());
    expect(e.c_cc.length).toBe(19);
    expect(e.c_cc[0]).toBe(0x157f1c02); // as CRIU 4.2 wrote it for the same bytes
    expect(termiosBytes(e)).toEqual(kernelTermios());
  });
  it('ignores the words past the 19 bytes the kernel keeps (CRIU 4.2 leaves stack bytes there)', () => {
    const e = termiosEntry(kernelTermios());
    e.c_cc = [...e.c_cc.slice(0, 5), 49, 0, 2584330976, 21974, 2772376800, 32741, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(termiosBytes(e)).toEqual(kernelTermios());
  });
});

describe('terminal devices', () => {
  it('tells ptmx, pts (with index), /dev/tty, consoles and serial lines apart', () => {
    expect(ttyDevice(0x502)).toEqual({ kind: 'ptmx' });
    expect(ttyDevice(0x8803)).toEqual({ kind: 'pts', index: 3 });
    expect(ttyDevice((137 << 8) | 4)).toEqual({ kind: 'pts', index: 260 });
    expect(ttyDevice(0x500)).toEqual({ kind: 'ctty' });
    expect(ttyDevice(0x501)).toEqual({ kind: 'console' });
    expect(ttyDevice(0x401)).toEqual({ kind: 'vt' });
    expect(ttyDevice(0x43f)).toEqual({ kind: 'vt' });
    // UART ports (/dev/ttyS0 4:64, ttyS191 4:255), USB (188) and low-density (204) serial lines
    for (const rdev of [0x440, 0x4ff, (188 << 8) | 0, (204 << 8) | 64]) expect(ttyDevice(rdev)).toEqual({ kind: 'serial' });
    // /dev/tty0 (the foreground virtual console): no terminal of its own, as CRIU does not take it for one
    expect(ttyDevice(0x400)).toEqual({ kind: 'none' });
    expect(ttyDevice(0x103)).toEqual({ kind: 'none' });
    expect(ptyInfoId(3, true)).toBe(7);
    expect(CTTY_INFO_ID).toBe(2012);
    expect([CONSOLE_INFO_ID, VT_INFO_ID, SERIAL_INFO_ID, extTtyInfoId(1), extTtyInfoId(64)]).toEqual([2004, 2008, 2020, 2026, 2152]);
  });
});

/** a TtyPlans loaded with these tty-info entries (and REG entries for paths) */
function plans(infos: Record<string, unknown>[], data: [number, string][] = [], shellJob = false, regs: [number, string][] = []): TtyPlans {
  // (the paths are not looked at: as below mounts the restore makes)
  const p = new TtyPlans(() => true);
  const internals = p as unknown as { infos: Map<number, unknown>; data: Map<number, Buffer>; files: Map<number, unknown> };
  internals.infos = new Map(infos.map((e) => [Number(e.id), e]));
  internals.data = new Map(data.map(([id, s]) => [id, Buffer.from(s)]));
  internals.files = new Map(regs.map(([id, name]) => [id, { id, type: 'REG', reg: { id, name } }]));
  p.shellJob = shellJob;
  return p;
}

const termios = termiosEntry(kernelTermios());
const info = (index: number, master: boolean, extra: Record<string, unknown> = {}) => ({
  id: ptyInfoId(index, master), type: 'PTY', locked: false, exclusive: false, packet_mode: false, sid: 0, pgrp: 0, rdev: master ? 0x502 : 0x8800 + index,
  termios, termios_locked: termios, winsize: { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 }, pty: { index }, dev: 6, uid: 0, gid: 5, ...extra,
});
const ctx = (id: number) => ({ id, what: `pid 10 fd ${id}`, pid: 10, index: id });
const fe = (id: number, infoId: number) => ({ id, tty_info_id: infoId, flags: 2, fown: {} });

describe('tty plans', () => {
  it('a pair: the session goes on the slave, with the master\'s sid and foreground group', () => {
    const p = plans([info(2, true, { sid: 100, pgrp: 101, packet_mode: true, locked: false }), info(2, false, { exclusive: true })]);
    const files = [p.plan(fe(1, 5), ctx(1)), p.plan(fe(2, 4), ctx(2))];
    p.finish(files);
    expect(files[0]).toMatchObject({ kind: 'tty', master: true, index: 2, path: '/dev/ptmx', packetMode: true });
    expect(files[0]!.ctty).toBeUndefined();
    expect(files[1]).toMatchObject({ master: false, path: '/dev/pts/2', exclusive: true, uid: 0, gid: 5, ctty: { sid: 100, pgrp: 101 } });
    expect(files[0]!.termios).toEqual(kernelTermios());
  });
  it('a master alone keeps its session; a locked one that must become a terminal is refused', () => {
    const p = plans([info(1, true, { sid: 100, pgrp: 100 })]);
    const files = [p.plan(fe(1, 3), ctx(1))];
    p.finish(files);
    expect(files[0]!.ctty).toEqual({ sid: 100, pgrp: 100 });
    const q = plans([info(1, true, { sid: 100, pgrp: 100, locked: true })]);
    expect(() => q.finish([q.plan(fe(1, 3), ctx(1))])).toThrow(/locked pty/);
  });
  it('a slave without its master: refused, or with --shell-job the restore\'s terminal (picked by the restorer): its settings, owner kept, its session', () => {
    const p = plans([info(4, false)]);
    expect(() => p.finish([p.plan(fe(1, 8), ctx(1))])).toThrow(/its master is not in the checkpoint/);
    const j = plans([info(4, false, { sid: 300, pgrp: 301 })], [], true);
    const files: unknown[] = [j.plan(fe(1, 8), ctx(1)), j.plan({ ...fe(2, 8), flags: 0 }, ctx(2))];
    j.finish(files);
    for (const [i, flags] of [[0, 2], [1, 0]] as const) {
      expect(files[i]).toMatchObject({ kind: 'inherit', flags, shellTerminal: 4, tty: { uid: 0xffffffff, gid: 0xffffffff, ctty: { sid: 300, pgrp: 301 }, winsize: [24, 80, 0, 0] } });
      expect((files[i] as { tty: { termios: Buffer } }).tty.termios).toEqual(kernelTermios());
    }
    const two = plans([info(4, false), info(5, false)], [], true);
    expect(() => two.finish([two.plan(fe(1, 8), ctx(1)), two.plan(fe(2, 10), ctx(2))])).toThrow(/two terminals outside the tree/);
  });
  it('bytes queued (tty-data.img): both ends\' on the master, to be put back; refused in packet mode for the master, or with no slave open', () => {
    const data: [number, string][] = [[ptyInfoId(3, true), 'out\r\n'], [ptyInfoId(3, false), 'typed']];
    const p = plans([info(3, true), info(3, false)], data);
    const files = [p.plan(fe(1, 7), ctx(1)), p.plan(fe(2, 6), ctx(2))];
    p.finish(files);
    expect(files[0]!.queued).toEqual({ toMaster: Buffer.from('out\r\n'), toSlave: Buffer.from('typed') });
    expect(files[1]!.queued).toBeUndefined();
    expect(() => plans([info(3, true, { packet_mode: true }), info(3, false)], data).plan(fe(1, 7), ctx(1))).toThrow(/queued for its master in packet mode/);
    const alone = plans([info(3, true)], [[ptyInfoId(3, false), 'typed']]);
    expect(() => alone.finish([alone.plan(fe(1, 7), ctx(1))])).toThrow(/its slave open nowhere/);
  });
  it('hung-up slaves (no termios): opened through a master of their own, no session; refused beside their master, and a hung-up master', () => {
    const hung = { ...info(5, false, { sid: 0 }), termios: undefined, termios_locked: undefined, winsize: undefined };
    const p = plans([hung]);
    const files = [p.plan(fe(1, 10), ctx(1)), p.plan(fe(2, 10), ctx(2))];
    p.finish(files);
    expect(files[0]).toMatchObject({ kind: 'tty', hung: true, master: false, index: 5, path: '/dev/pts/5', uid: 0, gid: 5 });
    expect(files[1]!.ctty).toBeUndefined();
    const q = plans([info(5, true), hung]);
    expect(() => q.finish([q.plan(fe(1, 11), ctx(1)), q.plan(fe(2, 10), ctx(2))])).toThrow(/hung-up slave whose master is in the checkpoint/);
  });
  it('a canonical slave\'s bytes: typed again unless an editing character is unmarked (a foreign image), or the master is in packet mode', () => {
    const ok = plans([info(3, true), info(3, false)], [[ptyInfoId(3, false), 'in\n\x16\x7f']]);
    expect(ok.plan(fe(1, 7), ctx(1)).queued?.toSlave).toEqual(Buffer.from('in\n\x16\x7f'));
    expect(() => plans([info(3, true), info(3, false)], [[ptyInfoId(3, false), 'in\x7f\n']]).plan(fe(1, 7), ctx(1))).toThrow(/editing character \(0x7f at 2\)/);
    expect(() => plans([info(3, true, { packet_mode: true }), info(3, false)], [[ptyInfoId(3, false), 'in\n']]).plan(fe(1, 7), ctx(1))).toThrow(/canonical mode and its master in packet mode/);
  });
  it('refuses hung-up masters and other kinds by name', () => {
    expect(() => plans([{ ...info(0, true), termios: undefined }]).plan(fe(1, 1), ctx(1))).toThrow(/hung-up pty master/);
    expect(() => plans([{ ...info(0, true), type: 'UNKNOWN' }]).plan(fe(1, 1), ctx(1))).toThrow(/an? UNKNOWN terminal is not restored/);
    expect(() => plans([{ ...info(0, true), type: 7 }]).plan(fe(1, 1), ctx(1))).toThrow(/a 7 terminal is not restored/);
  });
  it('the console and a virtual console: opened by the path of their REG entry, their settings and owner, no pair, no session', () => {
    const vt = { id: VT_INFO_ID, type: 'VT', locked: false, exclusive: true, packet_mode: false, sid: 0, pgrp: 0, rdev: 0x405, termios, termios_locked: termios, winsize: { ws_row: 25, ws_col: 80 }, dev: 6, uid: 0, gid: 5 };
    const p = plans([vt, { ...vt, id: CONSOLE_INFO_ID, type: 'CONSOLE', rdev: 0x501, exclusive: false }], [], false, [[7, '/d/tty5'], [8, '/d/console']]);
    const files = [p.plan({ ...fe(1, VT_INFO_ID), regf_id: 7 }, ctx(1)), p.plan({ ...fe(2, CONSOLE_INFO_ID), regf_id: 8 }, ctx(2))];
    p.finish(files);
    expect(files[0]).toMatchObject({ kind: 'tty', simple: true, path: '/d/tty5', exclusive: true, winsize: [25, 80, 0, 0], uid: 0, gid: 5 });
    expect(files[1]).toMatchObject({ kind: 'tty', simple: true, path: '/d/console', exclusive: false });
    expect(files[0]!.ctty).toBeUndefined();
    expect(() => p.plan(fe(3, VT_INFO_ID), ctx(3))).toThrow(/has no path/);
    expect(() => plans([{ ...vt, termios: undefined }], [], false, [[7, '/d/tty5']]).plan({ ...fe(1, VT_INFO_ID), regf_id: 7 }, ctx(1))).toThrow(/hung up/);
  });
  it('a serial line (SERIAL, as CRIU 4.2 writes it for 188:*, 204:*; crtools for UART ports too): opened by the path of its REG entry, its settings, owner and session', () => {
    const serial = { id: SERIAL_INFO_ID, type: 'SERIAL', locked: false, exclusive: false, packet_mode: false, sid: 100, pgrp: 101, rdev: 0x440, termios, termios_locked: termios, winsize: { ws_row: 33, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0 }, dev: 6, uid: 0, gid: 0 };
    const p = plans([serial], [], false, [[7, '/d/ttyS0']]);
    const files = [p.plan({ ...fe(1, SERIAL_INFO_ID), regf_id: 7 }, ctx(1)), p.plan({ ...fe(2, SERIAL_INFO_ID), regf_id: 7, flags: 0o4002 }, ctx(2))];
    p.finish(files);
    expect(files[0]).toMatchObject({ kind: 'tty', simple: true, path: '/d/ttyS0', flags: 2, winsize: [33, 101, 0, 0], uid: 0, gid: 0, ctty: { sid: 100, pgrp: 101 } });
    expect(files[1]).toMatchObject({ kind: 'tty', simple: true, path: '/d/ttyS0', flags: 0o4002 });
    expect(files[0]!.termios).toEqual(kernelTermios());
    expect(() => p.plan(fe(3, SERIAL_INFO_ID), ctx(3))).toThrow(/a serial line \(terminal 3\) has no path/);
    // (the numeric type, as a foreign JSON may give it)
    expect(plans([{ ...serial, type: 6 }], [], false, [[7, '/d/ttyS0']]).plan({ ...fe(1, SERIAL_INFO_ID), regf_id: 7 }, ctx(1))).toMatchObject({ simple: true });
  });
  it('an external terminal: refused without --inherit-fd, naming the key; handed over, its settings and its session', () => {
    const ext = { id: extTtyInfoId(1), type: 'EXT_TTY', locked: false, exclusive: false, packet_mode: false, sid: 100, pgrp: 101, rdev: 0x8803, termios, termios_locked: termios, winsize: { ws_row: 33, ws_col: 101 }, dev: 0x1a, uid: 0, gid: 5 };
    const p = plans([ext]);
    expect(() => p.plan(fe(1, 2026), ctx(1))).toThrow(/--inherit-fd 'fd\[N\]:tty\[8803:1a\]'/);
    expect(p.inheritKey(fe(1, 2026))).toBe('tty[8803:1a]');
    expect(p.inherited(fe(1, 2026))).toMatchObject({ winsize: [33, 101, 0, 0], uid: 0, gid: 5, ctty: { sid: 100, pgrp: 101 } });
    expect(plans([{ ...ext, sid: 0, pgrp: 0 }]).inherited(fe(1, 2026))!.ctty).toBeUndefined();
  });
  it('/dev/tty: opened again by its holder', () => {
    const p = plans([{ id: CTTY_INFO_ID, type: 'CTTY', sid: 100, pgrp: 100, rdev: 0x500, termios, winsize: {} }]);
    const f = p.plan(fe(1, CTTY_INFO_ID), ctx(1)) as TtyFilePlan;
    expect(f).toMatchObject({ kind: 'tty', devTty: true, path: '/dev/tty' });
    p.finish([f]);
    expect(f.ctty).toBeUndefined();
  });
  it('--inherit-fd knows a terminal as tty[rdev:dev]', () => {
    expect(plans([info(2, false)]).inheritKey({ tty_info_id: 4 })).toBe('tty[8802:6]');
  });
});
