/**
 * The lines a pty slave in canonical mode holds, as tty-data.img carries them: the bytes to type
 * at the master for the line discipline to hold them again as they were. CRIU 4.2 writes the
 * lines it reads, one after the other, and writes them back at the master as they are: for lines
 * of plain text (the usual case) these are the same bytes. What plain bytes would lose is kept
 * the way a user keeps it at a terminal: LNEXT before each byte of a line that the line
 * discipline would otherwise take as an editing, signal, flow or line-ending character, the
 * character that ended each line after it (an EOF for a line ended by one, which a read does not
 * return), and the line being typed last, unended. Typed with the slave's own termios, as CRIU
 * 4.2 does, or with only its line discipline's own processing, as crtools does (no echo kept, no
 * signals, no input translation), the reads find the same lines, the same line being typed.
 */

/** c_lflag, c_iflag bits and c_cc indices of the kernel's struct termios (x86_64) */
export const TERMIOS = {
  ISIG: 0o1, ICANON: 0o2, ECHO: 0o10, IEXTEN: 0o100000, EXTPROC: 0o200000,
  IGNCR: 0o200, ICRNL: 0o400, IXON: 0o2000,
  VINTR: 0, VQUIT: 1, VERASE: 2, VKILL: 3, VEOF: 4, VSTART: 8, VSTOP: 9, VSUSP: 10, VEOL: 11, VREPRINT: 12, VWERASE: 14, VLNEXT: 15, VEOL2: 16,
} as const;

/** where c_cc begins in the kernel's struct termios (after 4 flag words and c_line) */
const CC_AT = 17;
const NL = 0x0a;
const CR = 0x0d;

/** The kernel's struct termios (36 bytes) as the line discipline reads its input. */
interface Discipline {
  lflag: number;
  iflag: number;
  cc: (i: number) => number;
}

function discipline(termios: Buffer): Discipline {
  return { lflag: termios.readUInt32LE(12), iflag: termios.readUInt32LE(0), cc: (i) => termios[CC_AT + i]! };
}

/** a slave whose line discipline gathers lines: ICANON without EXTPROC (TIOCINQ counts whole lines only) */
export function isCanonical(termios: Buffer): boolean {
  const l = termios.readUInt32LE(12);
  return (l & TERMIOS.ICANON) !== 0 && (l & TERMIOS.EXTPROC) === 0;
}

/** the characters that end a line: NL, EOL, and EOL2 with IEXTEN */
function endsLine(d: Discipline, c: number): boolean {
  return c === NL || c === d.cc(TERMIOS.VEOL) || ((d.lflag & TERMIOS.IEXTEN) !== 0 && c === d.cc(TERMIOS.VEOL2));
}

/** a byte the line discipline would not keep as it is, typed on its own */
function special(d: Discipline, c: number): boolean {
  const ext = (d.lflag & TERMIOS.IEXTEN) !== 0;
  const sig = (d.lflag & TERMIOS.ISIG) !== 0;
  const ixon = (d.iflag & TERMIOS.IXON) !== 0;
  return endsLine(d, c) || c === d.cc(TERMIOS.VEOF) || c === d.cc(TERMIOS.VERASE) || c === d.cc(TERMIOS.VKILL)
    || (ext && (c === d.cc(TERMIOS.VWERASE) || c === d.cc(TERMIOS.VLNEXT) || c === d.cc(TERMIOS.VREPRINT)))
    || (sig && (c === d.cc(TERMIOS.VINTR) || c === d.cc(TERMIOS.VQUIT) || c === d.cc(TERMIOS.VSUSP)))
    || (ixon && (c === d.cc(TERMIOS.VSTART) || c === d.cc(TERMIOS.VSTOP)))
    || (c === CR && (d.iflag & (TERMIOS.ICRNL | TERMIOS.IGNCR)) !== 0);
}

/**
 * The bytes to type at the master for a canonical slave (termios: its struct termios) to hold
 * `lines` (complete lines, each as a read returned it) then `partial` (the line being typed).
 * exact false: a byte that would not be kept as it is could not be marked (no IEXTEN: no LNEXT).
 */
export function canonicalTyped(termios: Buffer, lines: readonly Buffer[], partial: Buffer): { typed: Buffer; exact: boolean } {
  const d = discipline(termios);
  const lnext = (d.lflag & TERMIOS.IEXTEN) !== 0 ? d.cc(TERMIOS.VLNEXT) : -1;
  const out: number[] = [];
  let exact = true;
  const put = (body: Buffer) => {
    for (const c of body) {
      if (special(d, c)) {
        if (lnext < 0) exact = false;
        else out.push(lnext);
      }
      out.push(c);
    }
  };
  for (const line of lines) {
    const last = line.length ? line[line.length - 1]! : -1;
    // a line ended by NL, EOL or EOL2 returns it; one ended by an EOF does not (an empty line: a lone EOF)
    if (last >= 0 && endsLine(d, last)) {
      put(line.subarray(0, line.length - 1));
      out.push(last);
    } else {
      put(line);
      out.push(d.cc(TERMIOS.VEOF));
    }
  }
  put(partial);
  return { typed: Buffer.from(out), exact };
}

/**
 * Whether `typed` (tty-data.img's bytes for a canonical slave: ours, or CRIU 4.2's lines as they
 * were read) can be typed again with nothing but its lines kept: no editing character (ERASE,
 * KILL; WERASE, REPRINT with IEXTEN) that LNEXT does not mark, which would change what is kept
 * and what is echoed. Returns the first such byte's offset, or -1.
 */
export function unmarkedEditing(termios: Buffer, typed: Buffer): number {
  const d = discipline(termios);
  const ext = (d.lflag & TERMIOS.IEXTEN) !== 0;
  let marked = false;
  for (let k = 0; k < typed.length; k++) {
    const c = typed[k]!;
    if (marked) {
      marked = false;
      continue;
    }
    if (c === d.cc(TERMIOS.VERASE) || c === d.cc(TERMIOS.VKILL) || (ext && (c === d.cc(TERMIOS.VWERASE) || c === d.cc(TERMIOS.VREPRINT)))) return k;
    if (ext && c === d.cc(TERMIOS.VLNEXT)) marked = true;
  }
  return -1;
}
