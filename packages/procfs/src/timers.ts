import { parseError, report, type ParseOptions } from './errors.js';
import { lines, readProcText, type ProcOptions, type Target } from './read.js';

/** One POSIX timer from /proc/PID/timers. */
export interface PosixTimer {
  id: number;
  signo: number;
  /** sigev_value (pointer) as the kernel printed it. */
  sigval: bigint;
  /** 'signal', 'thread', 'none' or 'thread+signal'… as printed. */
  notify: string;
  /** 'pid' or 'tid': whom the notification goes to. */
  notifyTarget: string;
  notifyId: number;
  clockId: number;
}

/**
 * Parse /proc/PID/timers: blocks of "ID:", "signal: SIG/PTR",
 * "notify: WHAT/pid.N" (or tid.N) and "ClockID:" lines.
 */
export function* iterTimers(text: string, opts?: ParseOptions): Generator<PosixTimer> {
  const ls = lines(text);
  let cur: Partial<PosixTimer> | undefined;
  let startLine = 0;
  const done = function* (): Generator<PosixTimer> {
    if (!cur) return;
    if (cur.signo === undefined || cur.notify === undefined || cur.clockId === undefined) report(opts, parseError(opts?.path, startLine, 'incomplete timer'));
    else yield cur as PosixTimer;
    cur = undefined;
  };
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i]!;
    const c = l.indexOf(':');
    const key = c > 0 ? l.slice(0, c) : '';
    const val = l.slice(c + 1).trim();
    const bad = (why: string) => report(opts, parseError(opts?.path, i + 1, why, l));
    if (key === 'ID') {
      yield* done();
      if (!/^\d+$/.test(val)) { bad('bad timer id'); continue; }
      cur = { id: Number(val) };
      startLine = i + 1;
      continue;
    }
    if (!cur) { bad('expected "ID: N"'); continue; }
    if (key === 'signal') {
      const m = /^(\d+)\/([0-9a-fA-F]+|\(null\))$/.exec(val);
      if (!m) { bad('bad signal'); continue; }
      cur.signo = Number(m[1]);
      cur.sigval = m[2] === '(null)' ? 0n : BigInt('0x' + m[2]);
    } else if (key === 'notify') {
      const m = /^([a-z+]+)\/(pid|tid)\.(\d+)$/.exec(val);
      if (!m) { bad('bad notify'); continue; }
      cur.notify = m[1]!;
      cur.notifyTarget = m[2]!;
      cur.notifyId = Number(m[3]);
    } else if (key === 'ClockID') {
      if (!/^\d+$/.test(val)) { bad('bad ClockID'); continue; }
      cur.clockId = Number(val);
    } else bad('unknown key');
  }
  yield* done();
}

export function parseTimers(text: string, opts?: ParseOptions): PosixTimer[] {
  return Array.from(iterTimers(text, opts));
}

export function readTimers(target: Target, opts?: ProcOptions): PosixTimer[] {
  const { path, text } = readProcText(target, 'timers', opts);
  return parseTimers(text, { path });
}
