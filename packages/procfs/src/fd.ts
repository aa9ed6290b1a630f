import { parseError, report, type ParseOptions } from './errors.js';
import { lines, numericEntries, setKey, readProcDir, readProcLink, readProcText, type ProcOptions, type Target } from './read.js';

/** One line "lock:\t…" of fdinfo (the /proc/locks format). */
export interface FdLock {
  id: number;
  /** The lock waits on another ("->"). */
  blocked: boolean;
  /** FLOCK, POSIX, OFDLCK, DELEG, LEASE, ACCESS… */
  type: string;
  /** ADVISORY, MANDATORY, ACTIVE, BREAKING, BREAKER… */
  mode: string;
  /** READ, WRITE, UNLCK, RW, NONE… */
  access: string;
  pid: number;
  devMajor: number;
  devMinor: number;
  ino: bigint;
  start: bigint;
  /** null when the lock reaches EOF. */
  end: bigint | null;
}

export interface EpollTfd {
  tfd: number;
  events: number;
  data: bigint;
  pos: bigint;
  ino: bigint;
  sdev: number;
}

export interface InotifyWatch {
  wd: number;
  ino: bigint;
  sdev: number;
  mask: number;
  ignoredMask: number;
  fhandleBytes?: number;
  fhandleType?: number;
  fhandle?: string;
}

export interface FanotifyMark {
  /** 'inode' marks carry ino/sdev/fhandle; 'mount' marks carry mntId. */
  kind: 'inode' | 'mount' | 'sb';
  ino?: bigint;
  sdev?: number;
  mntId?: number;
  mflags: number;
  mask: number;
  ignoredMask: number;
  fhandleBytes?: number;
  fhandleType?: number;
  fhandle?: string;
}

export interface TimerfdInfo {
  clockid: number;
  ticks: bigint;
  settimeFlags: number;
  value: { sec: bigint; nsec: bigint };
  interval: { sec: bigint; nsec: bigint };
}

/** /proc/PID/fdinfo/FD, typed; the per-type part is present for the matching file type. */
export interface FdInfo {
  pos: bigint;
  /** open flags (the kernel prints them in octal). */
  flags: number;
  mntId: number;
  ino: bigint;
  eventfd?: { count: bigint; id?: number; semaphore?: number };
  epoll?: { tfds: EpollTfd[] };
  signalfd?: { sigmask: bigint };
  inotify?: { watches: InotifyWatch[] };
  fanotify?: { flags?: number; eventFlags?: number; marks: FanotifyMark[] };
  timerfd?: TimerfdInfo;
  locks?: FdLock[];
  /** Keys this parser does not type (pidfd "Pid", tun "iff", …), as text. */
  other?: Record<string, string>;
}

/** Parse "k1:v1 k2:v2 …" (inotify/fanotify/epoll lines) into a map. */
function kvTokens(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  // epoll pads values after the colon ("tfd:        4 events:       1d"): join them first.
  const toks = s.trim().replace(/:\s+/g, ':').split(/\s+/);
  for (const t of toks) {
    const c = t.indexOf(':');
    if (c <= 0) return undefined;
    out.set(t.slice(0, c), t.slice(c + 1));
  }
  return out;
}

const isHex = (s: string | undefined): s is string => s !== undefined && /^[0-9a-fA-F]{1,16}$/.test(s);
const isDec = (s: string | undefined): s is string => s !== undefined && /^-?\d{1,20}$/.test(s);
const hexN = (s: string): number => parseInt(s, 16);
const hexB = (s: string): bigint => BigInt('0x' + s);

function parseLock(v: string): FdLock | undefined {
  // "1: FLOCK  ADVISORY  WRITE 6271 fe:00:2146401 0 EOF", maybe "1: -> POSIX …"
  const toks = v.trim().split(/\s+/);
  if (toks.length < 2 || !/^\d+:$/.test(toks[0]!)) return undefined;
  let i = 1;
  const blocked = toks[i] === '->';
  if (blocked) i++;
  if (toks.length - i < 7) return undefined;
  const [type, mode, access, pid, dev, start, end] = toks.slice(i, i + 7) as string[];
  const d = /^([0-9a-f]+):([0-9a-f]+):(\d+)$/.exec(dev!);
  if (!d || !isDec(pid) || !isDec(start) || (end !== 'EOF' && !isDec(end))) return undefined;
  return {
    id: Number(toks[0]!.slice(0, -1)), blocked, type: type!, mode: mode!, access: access!, pid: Number(pid),
    devMajor: hexN(d[1]!), devMinor: hexN(d[2]!), ino: BigInt(d[3]!), start: BigInt(start!), end: end === 'EOF' ? null : BigInt(end!),
  };
}

function fhandle(m: Map<string, string>, into: { fhandleBytes?: number; fhandleType?: number; fhandle?: string }): boolean {
  const b = m.get('fhandle-bytes'), t = m.get('fhandle-type'), h = m.get('f_handle');
  if (b === undefined) return true;
  if (!isHex(b) || !isHex(t) || h === undefined || !/^[0-9a-fA-F]*$/.test(h)) return false;
  into.fhandleBytes = hexN(b);
  into.fhandleType = hexN(t);
  into.fhandle = h;
  return true;
}

function timespec(v: string): { sec: bigint; nsec: bigint } | undefined {
  const m = /^\((\d+),\s*(\d+)\)$/.exec(v.trim());
  return m ? { sec: BigInt(m[1]!), nsec: BigInt(m[2]!) } : undefined;
}

/** Parse the text of /proc/PID/fdinfo/FD. */
export function parseFdinfo(text: string, opts?: ParseOptions): FdInfo {
  const out: FdInfo = { pos: 0n, flags: 0, mntId: 0, ino: 0n };
  const seen = new Set<string>();
  const ls = lines(text);
  const bad = (i: number, why: string) => report(opts, parseError(opts?.path, i + 1, why, ls[i]));
  for (let i = 0; i < ls.length; i++) {
    const line = ls[i]!;
    // "inotify wd:…" and "fanotify …" lines have no colon right after the key.
    const sp = /^(inotify|fanotify) /.exec(line);
    if (sp) {
      const m = kvTokens(line.slice(sp[0].length));
      if (!m) { bad(i, `bad ${sp[1]} line`); continue; }
      if (sp[1] === 'inotify') {
        const w = { wd: m.get('wd'), ino: m.get('ino'), sdev: m.get('sdev'), mask: m.get('mask'), ig: m.get('ignored_mask') };
        if (!isHex(w.wd) || !isHex(w.ino) || !isHex(w.sdev) || !isHex(w.mask) || !isHex(w.ig)) { bad(i, 'bad inotify line'); continue; }
        const watch: InotifyWatch = { wd: hexN(w.wd), ino: hexB(w.ino), sdev: hexN(w.sdev), mask: hexN(w.mask), ignoredMask: hexN(w.ig) };
        if (!fhandle(m, watch)) { bad(i, 'bad inotify fhandle'); continue; }
        (out.inotify ??= { watches: [] }).watches.push(watch);
      } else {
        const fa = (out.fanotify ??= { marks: [] });
        if (m.has('flags')) {
          const f = m.get('flags'), ef = m.get('event-flags');
          if (!isHex(f) || !isHex(ef)) { bad(i, 'bad fanotify line'); continue; }
          fa.flags = hexN(f);
          fa.eventFlags = hexN(ef);
          continue;
        }
        const mf = m.get('mflags'), mask = m.get('mask'), ig = m.get('ignored_mask');
        if (!isHex(mf) || !isHex(mask) || !isHex(ig)) { bad(i, 'bad fanotify mark'); continue; }
        const mark: FanotifyMark = { kind: 'inode', mflags: hexN(mf), mask: hexN(mask), ignoredMask: hexN(ig) };
        const ino = m.get('ino'), sdev = m.get('sdev'), mnt = m.get('mnt_id');
        if (mnt !== undefined) {
          if (!isHex(mnt)) { bad(i, 'bad fanotify mark'); continue; }
          mark.kind = 'mount';
          mark.mntId = hexN(mnt);
        } else if (isHex(ino) && isHex(sdev)) {
          mark.ino = hexB(ino);
          mark.sdev = hexN(sdev);
        } else if (isHex(sdev)) {
          mark.kind = 'sb';
          mark.sdev = hexN(sdev);
        } else { bad(i, 'bad fanotify mark'); continue; }
        if (!fhandle(m, mark)) { bad(i, 'bad fanotify fhandle'); continue; }
        fa.marks.push(mark);
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) { bad(i, 'expected "key: value"'); continue; }
    const key = line.slice(0, colon);
    const val = line.slice(colon + 1).trim();
    seen.add(key);
    let ok = true;
    switch (key) {
      case 'pos': ok = isDec(val); if (ok) out.pos = BigInt(val); break;
      case 'flags': ok = /^[0-7]{1,11}$/.test(val); if (ok) out.flags = parseInt(val, 8); break;
      case 'mnt_id': ok = isDec(val); if (ok) out.mntId = Number(val); break;
      case 'ino': ok = isDec(val); if (ok) out.ino = BigInt(val); break;
      case 'eventfd-count': ok = isHex(val); if (ok) (out.eventfd ??= { count: 0n }).count = hexB(val); break;
      case 'eventfd-id': ok = isDec(val); if (ok) (out.eventfd ??= { count: 0n }).id = Number(val); break;
      case 'eventfd-semaphore': ok = isDec(val); if (ok) (out.eventfd ??= { count: 0n }).semaphore = Number(val); break;
      case 'sigmask': ok = isHex(val); if (ok) out.signalfd = { sigmask: hexB(val) }; break;
      case 'tfd': {
        const m = kvTokens(line);
        const t = m && { tfd: m.get('tfd'), events: m.get('events'), data: m.get('data'), pos: m.get('pos'), ino: m.get('ino'), sdev: m.get('sdev') };
        ok = !!t && isDec(t.tfd) && isHex(t.events) && isHex(t.data) && isDec(t.pos) && isHex(t.ino) && isHex(t.sdev);
        if (ok && t) (out.epoll ??= { tfds: [] }).tfds.push({ tfd: Number(t.tfd), events: hexN(t.events!), data: hexB(t.data!), pos: BigInt(t.pos!), ino: hexB(t.ino!), sdev: hexN(t.sdev!) });
        break;
      }
      case 'lock': {
        const l = parseLock(val);
        ok = !!l;
        if (l) (out.locks ??= []).push(l);
        break;
      }
      case 'clockid': ok = isDec(val); if (ok) timerfd(out).clockid = Number(val); break;
      case 'ticks': ok = isDec(val); if (ok) timerfd(out).ticks = BigInt(val); break;
      case 'settime flags': ok = /^[0-7]+$/.test(val); if (ok) timerfd(out).settimeFlags = parseInt(val, 8); break;
      case 'it_value': { const t = timespec(val); ok = !!t; if (t) timerfd(out).value = t; break; }
      case 'it_interval': { const t = timespec(val); ok = !!t; if (t) timerfd(out).interval = t; break; }
      default:
        setKey((out.other ??= {}), key, val);
    }
    if (!ok) bad(i, `bad value of ${key}`);
  }
  for (const k of ['pos', 'flags']) if (ls.length > 0 && !seen.has(k)) report(opts, parseError(opts?.path, ls.length, `missing ${k}`));
  return out;
}

function timerfd(out: FdInfo): TimerfdInfo {
  return (out.timerfd ??= { clockid: 0, ticks: 0n, settimeFlags: 0, value: { sec: 0n, nsec: 0n }, interval: { sec: 0n, nsec: 0n } });
}

/** --raw: fdinfo's lines as [key, value] text pairs (repeated keys kept). */
export function parseFdinfoRaw(text: string): [string, string][] {
  return lines(text).map((l) => {
    const sp = /^(inotify|fanotify) /.exec(l);
    if (sp) return [sp[1]!, l.slice(sp[0].length)];
    const c = l.indexOf(':');
    return c < 0 ? ['', l] : [l.slice(0, c), l.slice(c + 1).trim()];
  });
}

/** Open descriptors of a process, ascending. */
export function listFds(target: Target, opts?: ProcOptions): number[] {
  return numericEntries(readProcDir(target, 'fd', opts));
}

/** Where /proc/PID/fd/N points: a path, 'pipe:[ino]', 'socket:[ino]', 'anon_inode:[eventfd]'… */
export function readFdLink(target: Target, fd: number, opts?: ProcOptions): string {
  return readProcLink(target, `fd/${fd}`, opts);
}

export function readFdinfo(target: Target, fd: number, opts?: ProcOptions): FdInfo {
  const { path, text } = readProcText(target, `fdinfo/${fd}`, opts);
  return parseFdinfo(text, { path });
}

export interface FdRecord extends FdInfo {
  fd: number;
  target: string;
}

/** Every descriptor with its link target and fdinfo. A descriptor closed meanwhile is left out. */
export function readFds(target: Target, opts?: ProcOptions & ParseOptions): FdRecord[] {
  const out: FdRecord[] = [];
  for (const fd of listFds(target, opts)) {
    let link: string;
    let info: { path: string; text: string };
    try {
      link = readFdLink(target, fd, opts);
      info = readProcText(target, `fdinfo/${fd}`, opts);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue;
      throw e;
    }
    out.push({ fd, target: link, ...parseFdinfo(info.text, { ...opts, path: info.path }) });
  }
  return out;
}
