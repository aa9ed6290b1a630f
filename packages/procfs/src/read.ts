import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { noSuchProcess } from './errors.js';

/** Where /proc is mounted; tests may point it elsewhere. */
export interface ProcOptions {
  /** Root of procfs (default '/proc'). */
  procRoot?: string;
}

/** Which process a path names: a pid, or a pid plus a thread id. */
export type Target = number | { pid: number; tid: number };

export function checkPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`not a pid: ${pid}`);
}

/** Path of a file under /proc/PID (or /proc/PID/task/TID). */
export function procPath(target: Target, name: string, opts?: ProcOptions): string {
  const root = opts?.procRoot ?? '/proc';
  if (typeof target === 'number') {
    checkPid(target);
    return name ? `${root}/${target}/${name}` : `${root}/${target}`;
  }
  checkPid(target.pid);
  checkPid(target.tid);
  return `${root}/${target.pid}/task/${target.tid}${name ? '/' + name : ''}`;
}

function pidOf(target: Target): number {
  return typeof target === 'number' ? target : target.tid;
}

/**
 * Turn ENOENT/ESRCH on a process's file into NO_SUCH_PROCESS when the
 * process itself is gone; keep Node's own error otherwise.
 */
export function mapProcError(e: unknown, target: Target, path: string, opts?: ProcOptions): unknown {
  const code = (e as { code?: string } | null)?.code;
  if (code === 'ESRCH') return noSuchProcess(pidOf(target), path, e);
  if (code === 'ENOENT' && !existsSync(procPath(target, '', opts))) return noSuchProcess(pidOf(target), path, e);
  return e;
}

/** Read a whole /proc text file. Missing process → CrtoolsError NO_SUCH_PROCESS. */
export function readProcText(target: Target, name: string, opts?: ProcOptions): { path: string; text: string } {
  const path = procPath(target, name, opts);
  try {
    return { path, text: readProcFile(path).toString('utf8') };
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
}

/** Read a whole /proc file as bytes. */
export function readProcBytes(target: Target, name: string, opts?: ProcOptions): { path: string; data: Buffer } {
  const path = procPath(target, name, opts);
  try {
    return { path, data: readProcFile(path) };
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
}

/**
 * /proc files report size 0, so read in big chunks until EOF: one read per
 * 1 MiB chunk keeps syscalls few for a 60,000-line maps file.
 */
export function readProcFile(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    let size = SCRATCH_SIZE;
    for (;;) {
      // the first 64 KiB go through one scratch buffer of the module's, and what was read is
      // copied out at its length: most /proc files are small (a thread's stat, status, cgroup),
      // and a fresh 64 KiB buffer for each read of a dump of 1,000 threads made ~300 MB for
      // the garbage collector
      const buf = chunks.length === 0 ? (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_SIZE)) : Buffer.allocUnsafe(size);
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, null);
        if (n === 0) break;
        off += n;
      }
      chunks.push(buf === scratch ? Buffer.from(buf.subarray(0, off)) : off === size ? buf : buf.subarray(0, off));
      total += off;
      if (off < size) break;
      if (size < 1 << 20) size <<= 2;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

const SCRATCH_SIZE = 1 << 16;
let scratch: Buffer | undefined;

/**
 * A /proc file as text in pieces of whole lines (each piece up to ~1 MiB, cut after a newline so
 * that no line and no UTF-8 sequence is split): a 60,000-area smaps (~90 MB) is parsed without
 * holding it whole, bytes and string, in memory at once.
 */
export function* readProcLines(target: Target, name: string, opts?: ProcOptions): Generator<string> {
  const path = procPath(target, name, opts);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
  try {
    const size = 1 << 20;
    let buf = Buffer.allocUnsafe(size);
    let have = 0; // bytes in buf not yet given out (a partial last line)
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2); // (one line longer than the buffer)
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, have, buf.length - have, null);
      } catch (e) {
        throw mapProcError(e, target, path, opts);
      }
      if (n === 0) {
        if (have) yield buf.toString('utf8', 0, have);
        return;
      }
      have += n;
      const cut = buf.lastIndexOf(10, have - 1) + 1;
      if (cut === 0) continue;
      yield buf.toString('utf8', 0, cut);
      buf.copy(buf, 0, cut, have);
      have -= cut;
    }
  } finally {
    closeSync(fd);
  }
}

export function readProcLink(target: Target, name: string, opts?: ProcOptions): string {
  const path = procPath(target, name, opts);
  try {
    return readlinkSync(path);
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
}

export function readProcDir(target: Target, name: string, opts?: ProcOptions): string[] {
  const path = procPath(target, name, opts);
  try {
    return readdirSync(path);
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
}

/** Numeric directory entries, sorted ascending (fd numbers, thread ids). */
export function numericEntries(names: string[]): number[] {
  const out: number[] = [];
  for (const n of names) {
    const v = Number(n);
    if (Number.isInteger(v) && v >= 0 && String(v) === n) out.push(v);
  }
  return out.sort((a, b) => a - b);
}

/** Split text into lines without the trailing empty one. */
export function lines(text: string): string[] {
  if (text.length === 0) return [];
  const ls = text.split('\n');
  if (ls[ls.length - 1] === '') ls.pop();
  return ls;
}

/**
 * Set obj[key] as an own data property, even for keys like "__proto__" that come from a file.
 * (A plain assignment for every other key: on a plain object only "__proto__" has a setter up
 * the chain, and defineProperty for each key of each parse was a tenth of a dump's parsing.)
 */
export function setKey<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}
