import { parseError, type ParseOptions } from './errors.js';
import { readProcText, type ProcOptions, type Target } from './read.js';

function one(text: string, re: RegExp, what: string, opts?: ParseOptions): string {
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!re.test(t)) throw parseError(opts?.path, 1, `expected ${what}`, t);
  return t;
}

/** /proc/PID/timerslack_ns: nanoseconds, decimal. */
export function parseTimerslack(text: string, opts?: ParseOptions): bigint {
  return BigInt(one(text, /^\d{1,20}$/, 'a decimal number', opts));
}

/** /proc/PID/loginuid: u32; 4294967295 means unset. */
export function parseLoginuid(text: string, opts?: ParseOptions): number {
  const v = Number(one(text, /^\d{1,10}$/, 'a decimal u32', opts));
  if (v > 0xffffffff) throw parseError(opts?.path, 1, 'expected a decimal u32', text.trim());
  return v;
}

/** /proc/PID/oom_score_adj: -1000 … 1000. */
export function parseOomScoreAdj(text: string, opts?: ParseOptions): number {
  const v = Number(one(text, /^-?\d{1,4}$/, 'an integer', opts));
  if (v < -1000 || v > 1000) throw parseError(opts?.path, 1, 'out of range -1000…1000', text.trim());
  return v;
}

/** /proc/PID/coredump_filter: "%08x" (the MMF_DUMP_* bits of the task's mm). */
export function parseCoredumpFilter(text: string, opts?: ParseOptions): number {
  return parseInt(one(text, /^[0-9a-fA-F]{1,8}$/, 'a hex number', opts), 16);
}

/** /proc/PID/personality: "%08x". */
export function parsePersonality(text: string, opts?: ParseOptions): number {
  return parseInt(one(text, /^[0-9a-fA-F]{1,8}$/, 'a hex number', opts), 16);
}

export const readTimerslack = (t: Target, o?: ProcOptions): bigint => { const r = readProcText(t, 'timerslack_ns', o); return parseTimerslack(r.text, { path: r.path }); };
export const readLoginuid = (t: Target, o?: ProcOptions): number => { const r = readProcText(t, 'loginuid', o); return parseLoginuid(r.text, { path: r.path }); };
export const readOomScoreAdj = (t: Target, o?: ProcOptions): number => { const r = readProcText(t, 'oom_score_adj', o); return parseOomScoreAdj(r.text, { path: r.path }); };
export const readCoredumpFilter = (t: Target, o?: ProcOptions): number => { const r = readProcText(t, 'coredump_filter', o); return parseCoredumpFilter(r.text, { path: r.path }); };
export const readPersonality = (t: Target, o?: ProcOptions): number => { const r = readProcText(t, 'personality', o); return parsePersonality(r.text, { path: r.path }); };
