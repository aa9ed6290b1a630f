/**
 * Terminals as CRIU's images describe them (tty.proto): which device numbers are which kind of
 * terminal, how a tty_info_entry's id is made from a pty's index, and termios_entry, whose
 * c_cc holds the control characters packed four to a word (CRIU copies the bytes of its
 * struct termios into 19 u32 words: little-endian, the 19 bytes the kernel keeps first).
 */
import { decodeDev } from './dev.js';

/** TtyType of tty.proto */
export const TTY_TYPE = { UNKNOWN: 0, PTY: 1, CONSOLE: 2, VT: 3, CTTY: 4, EXT_TTY: 5, SERIAL: 6 } as const;

/** /dev/tty (5:0), /dev/console (5:1), /dev/ptmx (5:2) */
export const TTYAUX_MAJOR = 5;
/** virtual consoles (1..63; 0 is /dev/tty0, the one in the foreground) and UART serial ports (64..255: /dev/ttyS*) */
export const TTY_MAJOR = 4;
/** pty masters opened by their own major (not through /dev/ptmx): 128..135 */
export const UNIX98_PTY_MASTER_MAJOR = 128;
/** pty slaves, /dev/pts/N: 136..143 (N = (major - 136) * 256 + minor) */
export const UNIX98_PTY_SLAVE_MAJOR = 136;
export const UNIX98_PTY_MAJOR_COUNT = 8;
/** serial lines CRIU 4.2 knows as such (its only SERIAL ones): USB (/dev/ttyUSB*) and low-density (/dev/ttyAMA*...) */
const USB_SERIAL_MAJOR = 188;
const LOW_DENSE_SERIAL_MAJOR = 204;

/** What a character device (stat's st_rdev) is, as a terminal. */
export type TtyDevice =
  | { kind: 'ptmx' } | { kind: 'pts'; index: number } | { kind: 'ctty' } | { kind: 'console' } | { kind: 'vt' } | { kind: 'serial' } | { kind: 'none' };

export function ttyDevice(rdev: number | bigint): TtyDevice {
  const { major, minor } = decodeDev(rdev);
  if (major === TTYAUX_MAJOR) return minor === 2 ? { kind: 'ptmx' } : minor === 1 ? { kind: 'console' } : minor === 0 ? { kind: 'ctty' } : { kind: 'none' };
  if (major >= UNIX98_PTY_SLAVE_MAJOR && major < UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT) return { kind: 'pts', index: (major - UNIX98_PTY_SLAVE_MAJOR) * 256 + minor };
  if (major >= UNIX98_PTY_MASTER_MAJOR && major < UNIX98_PTY_MASTER_MAJOR + UNIX98_PTY_MAJOR_COUNT) return { kind: 'ptmx' };
  // (/dev/tty0 follows the foreground console: no terminal of its own, as CRIU does not take it
  // for one; a UART port, 4:64 and up, is a serial line to crtools, which CRIU 4.2 on x86_64
  // does not take for a terminal either: see SERIAL_INFO_ID)
  if (major === TTY_MAJOR) return minor >= 1 && minor <= 63 ? { kind: 'vt' } : minor === 0 ? { kind: 'none' } : { kind: 'serial' };
  if (major === USB_SERIAL_MAJOR || major === LOW_DENSE_SERIAL_MAJOR) return { kind: 'serial' };
  return { kind: 'none' };
}

/** tty_info_entry id of a pty end: its index twice, plus one for the master (CRIU's numbering). */
export function ptyInfoId(index: number, master: boolean): number {
  return index * 2 + (master ? 1 : 0);
}

/** tty_info_entry id of /dev/tty (CRIU's CTTY_INDEX 1006, numbered like a pty slave's) */
export const CTTY_INFO_ID = 1006 * 2;
/** tty_info_entry id of /dev/console (CONSOLE_INDEX 1002) and of a virtual console (VT_INDEX 1004: one for them all) */
export const CONSOLE_INFO_ID = 1002 * 2;
export const VT_INFO_ID = 1004 * 2;
/**
 * tty_info_entry id of a serial line (STTY_INDEX 1010: one for them all, as for virtual
 * consoles). CRIU 4.2 writes and takes it for USB and low-density serial lines (majors 188,
 * 204); a UART port (4:64 and up, /dev/ttyS*) is no terminal to it on x86_64: its dump refuses
 * the descriptor (an unsupported character device) and its restore refuses such an entry (no
 * driver for the device), while crtools writes and takes it the same way.
 */
export const SERIAL_INFO_ID = 1010 * 2;
/**
 * tty_info_entry id of the n-th terminal named by --external tty[RDEV:DEV] (n from 1, as CRIU
 * numbers them from its ETTY_INDEX 1012; at most 64)
 */
export function extTtyInfoId(n: number): number {
  return (1012 + n) * 2;
}
export const EXT_TTY_MAX = 64;

/** Control characters the kernel keeps (its NCCS) */
export const TERMIOS_NCCS = 19;
/** c_cc words of a termios_entry */
export const TERMIOS_CC_WORDS = 19;

export interface TermiosEntry {
  c_iflag: number;
  c_oflag: number;
  c_cflag: number;
  c_lflag: number;
  c_line: number;
  c_ispeed: number;
  c_ospeed: number;
  c_cc: number[];
}

/** The kernel's struct termios (TCGETS: 4 flag words, c_line, 19 c_cc bytes) → termios_entry. */
export function termiosEntry(k: Uint8Array): TermiosEntry {
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  const cc = Buffer.alloc(TERMIOS_CC_WORDS * 4);
  b.copy(cc, 0, 17, 17 + TERMIOS_NCCS);
  return {
    c_iflag: b.readUInt32LE(0), c_oflag: b.readUInt32LE(4), c_cflag: b.readUInt32LE(8), c_lflag: b.readUInt32LE(12), c_line: b[16]!,
    c_ispeed: 0, c_ospeed: 0, c_cc: Array.from({ length: TERMIOS_CC_WORDS }, (_, i) => cc.readUInt32LE(i * 4)),
  };
}

/** termios_entry (ours or CRIU's) → the kernel's struct termios for TCSETS (36 bytes). */
export function termiosBytes(e: { c_iflag?: unknown; c_oflag?: unknown; c_cflag?: unknown; c_lflag?: unknown; c_line?: unknown; c_cc?: unknown[] }): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(Number(e.c_iflag ?? 0) >>> 0, 0);
  b.writeUInt32LE(Number(e.c_oflag ?? 0) >>> 0, 4);
  b.writeUInt32LE(Number(e.c_cflag ?? 0) >>> 0, 8);
  b.writeUInt32LE(Number(e.c_lflag ?? 0) >>> 0, 12);
  b[16] = Number(e.c_line ?? 0) & 0xff;
  const cc = Buffer.alloc(TERMIOS_CC_WORDS * 4);
  (e.c_cc ?? []).slice(0, TERMIOS_CC_WORDS).forEach((w, i) => cc.writeUInt32LE(Number(w) >>> 0, i * 4));
  cc.copy(b, 17, 0, TERMIOS_NCCS);
  return b;
}
