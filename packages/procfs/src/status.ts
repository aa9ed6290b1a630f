import { parseError, report, type ParseOptions } from './errors.js';
import { lines, readProcText, setKey, type ProcOptions, type Target } from './read.js';

/** A value of /proc/PID/status, typed by what the key holds. */
export type StatusValue = string | number | bigint | number[] | bigint[];

/**
 * /proc/PID/status keyed by the kernel's names. Typed: signal and capability
 * masks are bigint, "N kB" sizes are bytes (number), ids and counters are
 * numbers, id lists (Uid, Gid, Groups, NSpid…) number arrays, State its letter.
 */
export interface ProcStatus {
  Name?: string;
  State?: string;
  Tgid?: number;
  Pid?: number;
  PPid?: number;
  TracerPid?: number;
  Uid?: number[];
  Gid?: number[];
  Groups?: number[];
  NStgid?: number[];
  NSpid?: number[];
  NSpgid?: number[];
  NSsid?: number[];
  Threads?: number;
  SigQ?: number[];
  SigPnd?: bigint;
  ShdPnd?: bigint;
  SigBlk?: bigint;
  SigIgn?: bigint;
  SigCgt?: bigint;
  CapInh?: bigint;
  CapPrm?: bigint;
  CapEff?: bigint;
  CapBnd?: bigint;
  CapAmb?: bigint;
  NoNewPrivs?: number;
  Seccomp?: number;
  Seccomp_filters?: number;
  [key: string]: StatusValue | undefined;
}

/** How a key's value is typed (any other key: "N kB" as bytes, an integer as a number, else the text). */
const enum Kind { Auto, Text, State, Hex64, IdList, SigQ }
const KIND_OF = new Map<string, Kind>([
  ...['SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'untag_mask'].map((k) => [k, Kind.Hex64] as const),
  ...['Uid', 'Gid', 'Groups', 'NStgid', 'NSpid', 'NSpgid', 'NSsid'].map((k) => [k, Kind.IdList] as const),
  ...['Name', 'Umask', 'Cpus_allowed', 'Cpus_allowed_list', 'Mems_allowed', 'Mems_allowed_list', 'Speculation_Store_Bypass', 'SpeculationIndirectBranch', 'x86_Thread_features', 'x86_Thread_features_locked'].map((k) => [k, Kind.Text] as const),
  ['State', Kind.State],
  ['SigQ', Kind.SigQ],
]);

const HEX = /^[0-9a-fA-F]{1,16}$/;
const DIGITS = /^\d+$/;

/** Whether s[from, to) is one or more ASCII digits. */
function allDigits(s: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Whitespace as String.prototype.trim() takes it, for the few characters a status line has. */
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;

function typed(kind: Kind, val: string): StatusValue | undefined {
  switch (kind) {
    case Kind.Text:
      return val;
    case Kind.State:
      return val.length > 0 ? val[0] : undefined;
    case Kind.Hex64: {
      const v = val.startsWith('0x') ? val.slice(2) : val;
      return HEX.test(v) ? BigInt('0x' + v) : undefined;
    }
    case Kind.IdList: {
      if (val === '') return [];
      const parts = val.split(/\s+/);
      return parts.every((p) => DIGITS.test(p)) ? parts.map(Number) : undefined;
    }
    case Kind.SigQ: {
      const slash = val.indexOf('/');
      return slash > 0 && allDigits(val, 0, slash) && allDigits(val, slash + 1, val.length) ? [Number(val.slice(0, slash)), Number(val.slice(slash + 1))] : undefined;
    }
    default: {
      // "N kB": bytes; an integer (maybe negative): a number; anything else as it is
      if (val.endsWith(' kB') && allDigits(val, 0, val.length - 3)) return Number(val.slice(0, val.length - 3)) * 1024;
      if (allDigits(val, val.charCodeAt(0) === 45 /* - */ ? 1 : 0, val.length)) return Number(val);
      return val;
    }
  }
}

/**
 * The keys of the last status parsed, line by line, with their kinds: the next one (the same
 * kernel, the same lines) is matched against them in place, not sliced and looked up again.
 */
const lastKeys: { key: string; kind: Kind }[] = [];

/** The key of the line at `at` whose colon is at `colon` (line `i`), and its kind. */
function keyAt(text: string, at: number, colon: number, i: number): { key: string; kind: Kind } {
  const k = lastKeys[i];
  if (k !== undefined && k.key.length === colon - at && text.startsWith(k.key, at)) return k;
  const key = text.slice(at, colon);
  const known = { key, kind: KIND_OF.get(key) ?? Kind.Auto };
  if (i < 256) lastKeys[i] = known;
  return known;
}

/**
 * Parse /proc/PID/status (also per thread). Lines whose value does not fit its key are PROCFS_PARSE
 * errors. (One pass over the text, no array of its lines, the keys matched against the last
 * parse's: a dump reads one per thread.)
 */
export function parseStatus(text: string, opts?: ParseOptions): ProcStatus {
  const out: ProcStatus = {};
  const n = text.length;
  for (let at = 0, no = 1; at < n; no++) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = n;
    const colon = text.indexOf(':', at);
    if (colon <= at || colon >= nl) {
      report(opts, parseError(opts?.path, no, 'expected "Key:\\tvalue"', text.slice(at, nl)));
    } else {
      const { key, kind } = keyAt(text, at, colon, no - 1);
      let a = colon + 1;
      let b = nl;
      while (a < b && isSpace(text.charCodeAt(a))) a++;
      while (b > a && isSpace(text.charCodeAt(b - 1))) b--;
      const v = typed(kind, text.slice(a, b));
      if (v === undefined) report(opts, parseError(opts?.path, no, `bad value of ${key}`, text.slice(at, nl)));
      else setKey(out as Record<string, StatusValue>, key, v);
    }
    at = nl + 1;
  }
  return out;
}

/** --raw: the kernel's text values by key. */
export function parseStatusRaw(text: string, opts?: ParseOptions): Record<string, string> {
  const out: Record<string, string> = {};
  lines(text).forEach((line, i) => {
    const colon = line.indexOf(':');
    if (colon <= 0) return report(opts, parseError(opts?.path, i + 1, 'expected "Key:\\tvalue"', line));
    setKey(out, line.slice(0, colon), line.slice(colon + 1).trim());
  });
  return out;
}

export function readStatus(target: Target, opts?: ProcOptions): ProcStatus {
  const { path, text } = readProcText(target, 'status', opts);
  return parseStatus(text, { path });
}

/**
 * One key's text value of /proc/PID/status (trimmed), or undefined when the kernel has no such
 * line: for a caller that needs one value (the seccomp mode, the umask) of a status read per
 * thread, without the parse of its ~60 lines.
 */
export function readStatusValue(target: Target, key: string, opts?: ProcOptions): string | undefined {
  const t = `\n${readProcText(target, 'status', opts).text}`;
  const i = t.indexOf(`\n${key}:`);
  if (i < 0) return undefined;
  const start = i + key.length + 2;
  const end = t.indexOf('\n', start);
  return t.slice(start, end < 0 ? undefined : end).trim();
}
