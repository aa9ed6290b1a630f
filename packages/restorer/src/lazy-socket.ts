/**
 * The lazy-pages socket, as CRIU 4.2 speaks it between `criu restore --lazy-pages` and
 * `criu lazy-pages`: an AF_UNIX stream socket named `lazy-pages.socket` in the work directory,
 * where the daemon listens. The restore connects before it starts any task, then for each task
 * of pstree.img, in the order it restores them: the pid as a 4-byte int (negative for a zombie,
 * which has no userfaultfd), then for a live task one byte carrying the task's userfaultfd
 * (SCM_RIGHTS). Once every task runs, the 4-byte word LAZY_PAGES_RESTORE_FINISHED.
 *
 * Beside the socket, not through it: our daemon writes each task's lazy split (LazySplit: the
 * lazy ranges it will serve and the runs the restore fills), found from the pagemap it walked,
 * into LAZY_SPLIT_FILE of the work directory before it listens. Our restore takes it in place of
 * walking the same pagemap again (~4,600 entries for 4 GiB, the one part of a lazy restore's
 * path that grew with the checkpoint), for a task whose pagemap and mm images are the very files
 * the daemon read; otherwise it walks them itself. CRIU's restore and daemon never see it.
 */
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { closeFd, recvExact, sendWithFds, streamConnect } from '@crtools/sys';

export const LAZY_PAGES_SOCKET = 'lazy-pages.socket';
/** "ReSTore Finished": the restore has resumed every task */
export const LAZY_PAGES_RESTORE_FINISHED = 0x52535446;

/** The restore's end of the socket. */
export class LazyPagesClient {
  private constructor(private fd: number) {}

  /** Connects to the daemon listening in `workDir`; one clear error when none is. */
  static connect(workDir: string): LazyPagesClient {
    const path = join(workDir, LAZY_PAGES_SOCKET);
    try {
      return new LazyPagesClient(streamConnect(path));
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      throw new CrtoolsError('LAZY_PAGES_NO_DAEMON', `--lazy-pages: no lazy-pages daemon listens on ${path} (${code}); start \`criu lazy-pages -D\` first`, { exitCode: ExitCode.FAILED, context: { path } });
    }
  }

  /** Each task's pid and userfaultfd (undefined: a zombie), in the order given. */
  handOver(tasks: readonly { pid: number; uffd: number | undefined }[]): void {
    for (const t of tasks) {
      const pid = Buffer.alloc(4);
      pid.writeInt32LE(t.uffd === undefined ? -t.pid : t.pid);
      this.send(pid);
      if (t.uffd !== undefined) this.send(Buffer.from([0]), [t.uffd]);
    }
  }

  /** Every task runs: tell the daemon, and close. */
  finish(): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(LAZY_PAGES_RESTORE_FINISHED);
    try {
      this.send(b);
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  private send(data: Buffer, fds: number[] = []): void {
    try {
      sendWithFds(this.fd, data, fds);
    } catch (e) {
      throw new CrtoolsError('LAZY_PAGES_LOST', `--lazy-pages: the lazy-pages daemon went away (${(e as { code?: string }).code ?? String(e)})`, { exitCode: ExitCode.FAILED });
    }
  }
}

/** One task as the daemon receives it: pid and userfaultfd (undefined: a zombie). */
export interface ReceivedTask {
  pid: number;
  uffd: number | undefined;
}

/** The daemon's side: the next task from a connection, or null when the restore closed it. */
export function receiveTask(conn: number): ReceivedTask | null {
  const p = recvExact(conn, 4);
  for (const fd of p.fds) closeFd(fd);
  if (p.data.length < 4) return null;
  const pid = p.data.readInt32LE(0);
  if (pid < 0) return { pid: -pid, uffd: undefined };
  const f = recvExact(conn, 1);
  if (f.data.length < 1 || f.fds.length !== 1) {
    for (const fd of f.fds) closeFd(fd);
    throw new CrtoolsError('LAZY_PAGES_PROTOCOL', `lazy-pages: no userfaultfd came with pid ${pid}`, { exitCode: ExitCode.FAILED, context: { pid } });
  }
  return { pid, uffd: f.fds[0]! };
}

/** "LZSP": the daemon's lazy splits, a 4-byte length and that many bytes of JSON follow */
export const LAZY_SPLIT_MAGIC = 0x50535a4c;
/** larger: not written (the restore walks the pagemap itself: as long to read and parse) */
export const LAZY_SPLIT_MAX = 64 * 1024;
/** the file of the work directory (beside LAZY_PAGES_SOCKET) that holds them while the daemon runs */
export const LAZY_SPLIT_FILE = 'lazy-pages.split';

/**
 * The daemon: its splits into the work directory, whole or not at all (written aside, renamed
 * in); false when there are none, they are too large or the directory takes no file.
 */
export function writeLazySplits(workDir: string, splits: readonly LazySplit[]): boolean {
  const msg = splits.length ? encodeLazySplits(splits) : undefined;
  if (!msg) return false;
  const file = join(workDir, LAZY_SPLIT_FILE);
  try {
    writeFileSync(`${file}.${process.pid}`, msg);
    renameSync(`${file}.${process.pid}`, file);
    return true;
  } catch {
    return false;
  }
}

/** The daemon, as it ends: its splits removed (absent already is no error). */
export function removeLazySplits(workDir: string): void {
  try {
    unlinkSync(join(workDir, LAZY_SPLIT_FILE));
  } catch {
    /* none */
  }
}

/**
 * The restore: the splits our daemon left in the work directory, by pid; undefined when there
 * are none (CRIU's daemon) or they are not as written (the restore walks the pagemaps then).
 * Each is taken only for a task whose images are the files it names (sameFile).
 */
export function readLazySplits(workDir: string): Map<number, LazySplit> | undefined {
  try {
    const b = readFileSync(join(workDir, LAZY_SPLIT_FILE));
    if (b.length < 8 || b.readUInt32LE(0) !== LAZY_SPLIT_MAGIC || b.readUInt32LE(4) !== b.length - 8) return undefined;
    return decodeLazySplits(b.subarray(8));
  } catch {
    return undefined;
  }
}

/** Which file an image is (stat): the restore takes a split only for the files the daemon read. */
export interface FileIdent {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

export function fileIdent(path: string): FileIdent | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return { dev: st.dev.toString(), ino: st.ino.toString(), size: st.size.toString(), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString() };
  } catch {
    return undefined;
  }
}

export function sameFile(a: FileIdent | undefined, b: FileIdent | undefined): boolean {
  return !!a && !!b && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/**
 * One task's pagemap as a lazy restore uses it (PageReader.lazySplit): the lazy ranges (the
 * daemon serves them) and the segments of the other pages with data in the images (the restore
 * fills them), with the files it came from.
 */
export interface LazySplit {
  pid: number;
  pagemap: FileIdent;
  mm: FileIdent;
  pagesPath: string;
  /** the pagemap's entries (for the log) */
  entries: number;
  ranges: { start: bigint; end: bigint }[];
  segments: { vaddr: bigint; nrPages: number; path: string; offset: number }[];
}

/** The message (header included), or undefined when it would exceed LAZY_SPLIT_MAX. */
export function encodeLazySplits(splits: readonly LazySplit[]): Buffer | undefined {
  const hex = (v: bigint) => v.toString(16);
  const json = JSON.stringify({
    v: 1,
    tasks: splits.map((t) => ({
      pid: t.pid,
      pagemap: t.pagemap,
      mm: t.mm,
      pagesPath: t.pagesPath,
      entries: t.entries,
      ranges: t.ranges.flatMap((r) => [hex(r.start), hex(r.end)]),
      segments: t.segments.map((s) => [hex(s.vaddr), s.nrPages, s.path, s.offset]),
    })),
  });
  const body = Buffer.from(json, 'utf8');
  if (body.length > LAZY_SPLIT_MAX - 8) return undefined;
  const h = Buffer.alloc(8);
  h.writeUInt32LE(LAZY_SPLIT_MAGIC, 0);
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body]);
}

/** The message's body (after the header) → splits by pid; throws on anything not as written. */
export function decodeLazySplits(body: Buffer): Map<number, LazySplit> {
  const m = JSON.parse(body.toString('utf8')) as { v: number; tasks: { pid: number; pagemap: FileIdent; mm: FileIdent; pagesPath: string; entries: number; ranges: string[]; segments: [string, number, string, number][] }[] };
  if (m.v !== 1 || !Array.isArray(m.tasks)) throw new Error('lazy split: not version 1');
  const out = new Map<number, LazySplit>();
  const big = (h: string) => BigInt(`0x${h}`);
  for (const t of m.tasks) {
    const ranges: LazySplit['ranges'] = [];
    for (let i = 0; i + 1 < t.ranges.length; i += 2) ranges.push({ start: big(t.ranges[i]!), end: big(t.ranges[i + 1]!) });
    out.set(t.pid, { pid: t.pid, pagemap: t.pagemap, mm: t.mm, pagesPath: t.pagesPath, entries: t.entries, ranges, segments: t.segments.map(([v, n, path, offset]) => ({ vaddr: big(v), nrPages: n, path, offset })) });
  }
  return out;
}
