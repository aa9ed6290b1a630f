/**
 * How a failed request is told to the client: cr_errmsg, the first error line of the request's
 * log (as CRIU sends its log's first error), else the error's own message; cr_errno, the errno
 * behind the failure when there is one (EBADRQC for options refused, as CRIU).
 */
import { readFileSync, statSync } from 'node:fs';
import { CriuLog, ExitCode, isCrtoolsError } from '@crtools/common';

export const EBADRQC = 56;
const EPERM = 1;
const ESRCH = 3;
const EEXIST = 17;
const EOPNOTSUPP = 95;
export const ECHILD = 10;

/** Where a log ends now (0 when there is none): a request's own lines come after it. */
export function logEnd(logPath: string | undefined): number {
  try {
    return logPath ? statSync(logPath).size : 0;
  } catch {
    return 0;
  }
}

/** The first "Error (...)" line of a crtools log from byte `from` on, without its timestamp. */
export function firstLogError(logPath: string | undefined, from = 0): string | undefined {
  if (!logPath) return undefined;
  let text: string;
  try {
    const all = readFileSync(logPath);
    text = all.subarray(from <= all.length ? from : 0).toString('utf8');
  } catch {
    return undefined;
  }
  for (const l of text.split('\n')) {
    const m = /^(?:\(\d+\.\d+\) )?(Error \(.*)$/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Write a request's failure into its log as an `Error (rpc): ...` line, for the failures no
 * engine logged (an option refused, a client not allowed): as CRIU, whose log tells every
 * refusal, so that a client which shows only the log (runc 1.1 prints its path) says why.
 */
export function logFailure(logPath: string, logLevel: number, e: unknown): void {
  try {
    const log = new CriuLog(logLevel, logPath);
    log.error('rpc', e instanceof Error ? e.message : String(e));
    log.close();
  } catch {
    // a log that cannot be written: the answer still carries the message
  }
}

/** logFailure, unless the request's log already has an error line from `from` on (the engine's). */
export function logFailureOnce(logPath: string | undefined, logLevel: number, from: number, e: unknown): void {
  if (logPath !== undefined && firstLogError(logPath, from) === undefined) logFailure(logPath, logLevel, e);
}

/** The errno behind an error, searched through its causes (Node's errors carry it negative). */
function errnoOf(e: unknown): number | undefined {
  for (let c = e, depth = 0; c && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const n = (c as { errno?: unknown }).errno;
    if (typeof n === 'number' && n !== 0) return Math.abs(n);
  }
  return undefined;
}

/** cr_errmsg and cr_errno for a failed request. */
export function failureFields(e: unknown, log?: { path?: string; from: number }): { cr_errmsg: string; cr_errno?: number } {
  const message = e instanceof Error ? e.message : String(e);
  const cr_errmsg = firstLogError(log?.path, log?.from) ?? message;
  // what a client tells apart (pycriu names EBADRQC, ESRCH for DUMP, EEXIST for RESTORE): by the error's
  // code first, else the errno beneath it
  let cr_errno: number | undefined;
  if (isCrtoolsError(e)) {
    if (/OPTION|BAD_OPTIONS|USAGE/.test(e.code)) cr_errno = EBADRQC;
    else if (e.code === 'BAD_PID' || e.code === 'TASK_GONE' || e.code === 'NO_SUCH_TASK') cr_errno = ESRCH;
    else if (e.code === 'RESTORE_PID_IN_USE') cr_errno = EEXIST;
    else if (e.code === 'RPC_ACCESS_DENIED') cr_errno = EPERM;
    // what crtools does not carry out yet (namespaces, ttys, ...): the errno says so
    else if (e.exitCode === ExitCode.UNSUPPORTED) cr_errno = EOPNOTSUPP;
  }
  cr_errno ??= errnoOf(e);
  return cr_errno === undefined ? { cr_errmsg } : { cr_errmsg, cr_errno };
}
