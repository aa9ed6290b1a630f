import { describe, expect, it } from 'vitest';
import { canonicalTyped, isCanonical, TERMIOS, unmarkedEditing } from './typed.js';

/** the kernel's struct termios of a fresh pty (ICANON, ECHO, ISIG, IEXTEN; ICRNL, IXON), EOL as given */
function fresh(eol = 0, lflag = 0x8a3b): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(0x500, 0);
  b.writeUInt32LE(0x5, 4);
  b.writeUInt32LE(0xbf, 8);
  b.writeUInt32LE(lflag, 12);
  Buffer.from([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, eol, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0]).copy(b, 17);
  return b;
}
const L = (s: string) => Buffer.from(s, 'latin1');

describe('a canonical slave\'s lines as typed again (tty-data.img)', () => {
  it('plain lines are the bytes read, one after the other (what CRIU 4.2 writes)', () => {
    expect(canonicalTyped(fresh(), [L('in\n'), L('two\n')], L(''))).toEqual({ typed: L('in\ntwo\n'), exact: true });
  });
  it('a line ended by EOF gets its EOF back, a lone EOF too; EOL ends a line as it is; the line being typed comes last, unended', () => {
    const t = fresh(0x3b);
    expect(canonicalTyped(t, [L('1'), L(''), L('a;')], L('2z\t')).typed).toEqual(L('1\x04\x04a;2z\t'));
  });
  it('a byte the line discipline would act on is marked by LNEXT: ERASE, INTR, a NL inside a line, NUL (EOL disabled is 0), CR with ICRNL', () => {
    expect(canonicalTyped(fresh(), [L('x\x7fy\x03z\n'), L('a\nb\n'), L('n\0\n')], L('\r')).typed)
      .toEqual(L('x\x16\x7fy\x16\x03z\na\x16\nb\nn\x16\0\n\x16\r'));
  });
  it('without IEXTEN there is no LNEXT: such a byte makes it inexact; plain lines stay exact', () => {
    const noext = fresh(0, 0x8a3b & ~TERMIOS.IEXTEN);
    expect(canonicalTyped(noext, [L('x\x7fy\n')], L('')).exact).toBe(false);
    expect(canonicalTyped(noext, [L('xy\n')], L('ab')).exact).toBe(true);
  });
  it('ICANON without EXTPROC is canonical', () => {
    expect(isCanonical(fresh())).toBe(true);
    expect(isCanonical(fresh(0, 0x8a3b | TERMIOS.EXTPROC))).toBe(false);
    expect(isCanonical(fresh(0, 0x8a3b & ~TERMIOS.ICANON))).toBe(false);
  });
  it('finds an editing character LNEXT does not mark (a foreign image\'s lines), and none in what it typed', () => {
    expect(unmarkedEditing(fresh(), L('ab\x7fc\n'))).toBe(2);
    expect(unmarkedEditing(fresh(), L('ab\x16\x7fc\n\x15'))).toBe(6);
    expect(unmarkedEditing(fresh(), canonicalTyped(fresh(), [L('x\x7f\x15\x17\x12\n')], L('\x16')).typed)).toBe(-1);
  });
});
