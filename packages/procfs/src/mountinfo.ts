import { parseError, report, type ParseOptions } from './errors.js';
import { lines, readProcText, type ProcOptions, type Target } from './read.js';

/** One line of /proc/PID/mountinfo (proc(5)), with octal escapes (\040 …) decoded. */
export interface MountInfo {
  mntId: number;
  parentId: number;
  devMajor: number;
  devMinor: number;
  root: string;
  mountPoint: string;
  /** Per-mount options, e.g. 'rw,relatime'. */
  mountOptions: string;
  /** Optional fields: shared:N, master:N, propagate_from:N, unbindable. */
  shared?: number;
  master?: number;
  propagateFrom?: number;
  unbindable?: boolean;
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** Undo the kernel's mangle(): space, tab, newline and backslash as \ooo. */
export function unescapeOctal(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfoLine(line: string, lineNo = 1, opts?: ParseOptions): MountInfo {
  const f = line.split(' ');
  const dash = f.indexOf('-', 6);
  if (f.length < 10 || dash < 0 || f.length - dash < 4) throw parseError(opts?.path, lineNo, 'expected "id parent maj:min root mountpoint opts [optional…] - fstype source superopts"', line);
  const dev = /^(\d+):(\d+)$/.exec(f[2]!);
  if (!/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!) || !dev) throw parseError(opts?.path, lineNo, 'bad mount id or device', line);
  const m: MountInfo = {
    mntId: Number(f[0]), parentId: Number(f[1]), devMajor: Number(dev[1]), devMinor: Number(dev[2]),
    root: unescapeOctal(f[3]!), mountPoint: unescapeOctal(f[4]!), mountOptions: f[5]!,
    optional: f.slice(6, dash), fsType: unescapeOctal(f[dash + 1]!), source: unescapeOctal(f[dash + 2]!), superOptions: f.slice(dash + 3).join(' '),
  };
  for (const o of m.optional) {
    const kv = /^(shared|master|propagate_from):(\d+)$/.exec(o);
    if (kv) {
      const n = Number(kv[2]);
      if (kv[1] === 'shared') m.shared = n;
      else if (kv[1] === 'master') m.master = n;
      else m.propagateFrom = n;
    } else if (o === 'unbindable') m.unbindable = true;
    else throw parseError(opts?.path, lineNo, `unknown optional field ${o}`, line);
  }
  return m;
}

export function* iterMountinfo(text: string, opts?: ParseOptions): Generator<MountInfo> {
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    try {
      yield parseMountinfoLine(ls[i]!, i + 1, opts);
    } catch (e) {
      report(opts, e as never);
    }
  }
}

export function parseMountinfo(text: string, opts?: ParseOptions): MountInfo[] {
  return Array.from(iterMountinfo(text, opts));
}

export function readMountinfo(target: Target, opts?: ProcOptions): MountInfo[] {
  const { path, text } = readProcText(target, 'mountinfo', opts);
  return parseMountinfo(text, { path });
}
