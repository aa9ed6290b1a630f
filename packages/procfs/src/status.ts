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

const HEX64 = new Set(['SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'untag_mask']);
const ID_LISTS = new Set(['Uid', 'Gid', 'Groups', 'NStgid', 'NSpid', 'NSpgid', 'NSsid']);
const STRINGS = new Set(['Name', 'Umask', 'Cpus_allowed', 'Cpus_allowed_list', 'Mems_allowed', 'Mems_allowed_list', 'Speculation_Store_Bypass', 'SpeculationIndirectBranch', 'x86_Thread_features', 'x86_Thread_features_locked']);

function typed(key: string, val: string): StatusValue | undefined {
  if (STRINGS.has(key)) return val;
  if (key === 'State') return val.length > 0 ? val[0] : undefined;
  if (HEX64.has(key)) {
    const v = val.startsWith('0x') ? val.slice(2) : val;
    return /^[0-9a-fA-F]{1,16}$/.test(v) ? BigInt('0x' + v) : undefined;
  }
  if (ID_LISTS.has(key)) {
    if (val === '') return [];
    const parts = val.split(/\s+/);
    return parts.every((p) => /^\d+$/.test(p)) ? parts.map(Number) : undefined;
  }
  if (key === 'SigQ') {
    const m = /^(\d+)\/(\d+)$/.exec(val);
    return m ? [Number(m[1]), Number(m[2])] : undefined;
  }
  const kb = /^(\d+) kB$/.exec(val);
  if (kb) return Number(kb[1]) * 1024;
  if (/^-?\d+$/.test(val)) return Number(val);
  return val;
}

/** Parse /proc/PID/status (also per thread). Lines whose value does not fit its key are PROCFS_PARSE errors. */
export function parseStatus(text: string, opts?: ParseOptions): ProcStatus {
  const out: ProcStatus = {};
  lines(text).forEach((line, i) => {
    const colon = line.indexOf(':');
    if (colon <= 0) return report(opts, parseError(opts?.path, i + 1, 'expected "Key:\\tvalue"', line));
    const key = line.slice(0, colon);
    const val = line.slice(colon + 1).trim();
    const v = typed(key, val);
    if (v === undefined) return report(opts, parseError(opts?.path, i + 1, `bad value of ${key}`, line));
    setKey(out as Record<string, StatusValue>, key, v);
  });
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
