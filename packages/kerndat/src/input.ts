/**
 * Where `criu check` finds a kerndat document handed to it on a descriptor
 * (`kerndat | criu check`), without ever waiting on, or taking, input that is
 * not one. The rule:
 *
 * - a regular file: used when it holds a kerndat document from its current
 *   offset on (read with positional reads: the offset does not move);
 * - a pipe or a socket: looked at without consuming it (tee(2) for a pipe,
 *   MSG_PEEK for a socket). Bytes already there that open a kerndat document
 *   (`{ "schema":`) are read to the end; other bytes are left where they are.
 *   An empty pipe is waited on only while a kerndat process holds its write
 *   end (found in /proc); an empty socket, an idle pipe, a closed one: none;
 * - anything else (a terminal, /dev/null): none.
 *
 * `criu check --kerndat FILE|-` says it outright and needs none of this.
 */
import { basename } from 'node:path';
import { fstatSync, readFileSync, readSync } from 'node:fs';
import { listFds, listPids, readCmdline, readFdinfo, readFdLink } from '@crtools/procfs';
import { CrtoolsError, ExitCode, sleepSync } from '@crtools/common';
import { NR, raw, closeFd } from './sys.js';

const PEEK_BYTES = 256;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const SPLICE_F_NONBLOCK = 2;
const MSG_PEEK = 2;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const SIGNATURE = /^\s*\{\s*"schema"\s*:/;

export interface DescriptorDocOptions {
  /** the descriptor (default 0, stdin) */
  fd?: number;
  /** how long a pipe whose writer is a kerndat process is waited for (default 60 s) */
  writerWaitMs?: number;
  /** how long a started but still ambiguous opening (`{ "sch`) is waited on (default 1 s) */
  prefixWaitMs?: number;
  /** tells whether a process (its argv) is a kerndat writer; default: argv[0] or argv[1] named kerndat(.js) */
  isKerndatWriter?: (argv: string[]) => boolean;
}

type Opening = 'yes' | 'no' | 'maybe';

/** Do these first bytes open a kerndat document? 'maybe' while they are a prefix of one. */
export function opensKerndatDocument(head: string): Opening {
  if (SIGNATURE.test(head)) return 'yes';
  const t = head.replace(/^\s+/, '');
  if (t === '') return 'maybe';
  // a prefix of `{ "schema":` (with any whitespace) may still become one
  const probe = /^\{\s*("(s(c(h(e(m(a("\s*)?)?)?)?)?)?)?)?$/;
  return probe.test(t) ? 'maybe' : 'no';
}

/** Bytes waiting in a pipe, left in it (tee into a scratch pipe); undefined: none yet; '' : end of file. */
function peekPipe(fd: number): string | undefined {
  const p = Buffer.alloc(8);
  if (raw(NR.pipe2, p, O_NONBLOCK | O_CLOEXEC).ret === -1n) return undefined;
  const [r, w] = [p.readInt32LE(0), p.readInt32LE(4)];
  try {
    const t = raw(NR.tee, fd, w, PEEK_BYTES, SPLICE_F_NONBLOCK);
    if (t.ret === -1n) return undefined; // EAGAIN: nothing yet (or not teeable)
    if (t.ret === 0n) return '';
    const buf = Buffer.alloc(Number(t.ret));
    const n = raw(NR.read, r, buf, buf.length);
    return n.ret > 0n ? buf.subarray(0, Number(n.ret)).toString('utf8') : undefined;
  } finally {
    closeFd(r);
    closeFd(w);
  }
}

/** Bytes waiting on a socket, left on it (MSG_PEEK); undefined: none yet; '': the peer closed. */
function peekSocket(fd: number): string | undefined {
  const buf = Buffer.alloc(PEEK_BYTES);
  const r = raw(NR.recvfrom, fd, buf, buf.length, MSG_PEEK | MSG_DONTWAIT, 0, 0);
  if (r.ret === -1n) return undefined;
  return buf.subarray(0, Number(r.ret)).toString('utf8');
}

/** Read a stream descriptor to its end (it may be non-blocking). */
function readToEnd(fd: number, deadline = Infinity): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) throw e;
      sleepSync(5);
      continue;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A regular file from its current offset, by positional reads (the offset stays). */
function readFileFromOffset(fd: number, first: number): string {
  const pos = raw(NR.lseek, fd, 0, 1 /* SEEK_CUR */);
  let at = pos.ret === -1n ? 0 : Number(pos.ret);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(first || 65536);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, at);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    at += n;
    if (first) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readCmdline(pid).join('\0');
  } catch {
    return undefined;
  }
}

function defaultIsKerndatWriter(argv: string[]): boolean {
  return argv.slice(0, 2).some((a) => /^kerndat(\.js)?$/.test(basename(a)));
}

/** The command lines of the other processes that hold pipe `ino` open for writing. */
export function pipeWriters(ino: number): string[][] {
  const out: string[][] = [];
  const link = `pipe:[${ino}]`;
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    try {
      // (a process or descriptor gone meanwhile is no writer)
      const writes = listFds(pid).some((fd) => {
        try {
          return readFdLink(pid, fd) === link && (readFdinfo(pid, fd).flags & 3) === 1; // O_WRONLY
        } catch {
          return false;
        }
      });
      if (writes) out.push(readCmdline(pid));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

/**
 * The kerndat document waiting on a descriptor (stdin by default), as text, or
 * undefined when there is none: see the rule at the top of this file. Never
 * consumes bytes that do not open a kerndat document.
 */
export function readKerndatFromDescriptor(opts: DescriptorDocOptions = {}): string | undefined {
  const fd = opts.fd ?? 0;
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return undefined;
  }
  if (st.isFile()) {
    if (st.size === 0) return undefined;
    return opensKerndatDocument(readFileFromOffset(fd, PEEK_BYTES)) === 'yes' ? readFileFromOffset(fd, 0) : undefined;
  }
  const pipe = st.isFIFO();
  if (!pipe && !st.isSocket()) return undefined;
  const peek = () => (pipe ? peekPipe(fd) : peekSocket(fd));
  const prefixWait = opts.prefixWaitMs ?? 1000;
  let head = peek();
  if (head === undefined && pipe) {
    // nothing yet: wait only for a kerndat process that holds the write end
    const isWriter = opts.isKerndatWriter ?? defaultIsKerndatWriter;
    let writers = pipeWriters(st.ino);
    // a writer that is still a copy of our shell (`kerndat | criu check`: forked, not yet
    // exec'd), or one in the middle of execve (its new memory has no arguments yet: an
    // empty command line), is given a moment to become what it runs
    const shell = cmdlineOf(process.ppid);
    const becoming = (w: string[]) => w.length === 0 || (shell !== undefined && w.join('\0') === shell);
    for (const until = Date.now() + prefixWait; head === undefined && !writers.some(isWriter) && writers.some(becoming) && Date.now() < until; ) {
      sleepSync(10);
      head = peek();
      writers = pipeWriters(st.ino);
    }
    if (head === undefined && !writers.some(isWriter)) return undefined;
    const deadline = Date.now() + (opts.writerWaitMs ?? 60_000);
    while (head === undefined) {
      if (Date.now() > deadline) {
        throw new CrtoolsError('KERNDAT_NO_INPUT', 'the kerndat process writing to stdin sent nothing in time', { exitCode: ExitCode.FAILED });
      }
      sleepSync(10);
      head = peek();
    }
  }
  if (head === undefined || head === '') return undefined;
  const until = Date.now() + prefixWait;
  let opening = opensKerndatDocument(head);
  while (opening === 'maybe' && Date.now() < until) {
    sleepSync(10);
    const more = peek();
    if (more === '') break;
    if (more !== undefined) opening = opensKerndatDocument((head = more));
  }
  return opening === 'yes' ? readToEnd(fd) : undefined;
}

/** `--kerndat FILE|-`: the document the user named (`-`: all of stdin). */
export function readKerndatArgument(arg: string): string {
  try {
    return arg === '-' ? readToEnd(0) : readFileSync(arg, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CrtoolsError('KERNDAT_NO_INPUT', `cannot read kerndat document ${arg === '-' ? 'from stdin' : arg}: ${err.code ?? err.message}`, {
      exitCode: ExitCode.BAD_INPUT,
      cause: e,
    });
  }
}
