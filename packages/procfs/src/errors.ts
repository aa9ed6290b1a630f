import { CrtoolsError, ExitCode, type ErrorContext } from '@crtools/common';

/** Error code of a /proc file whose text does not have the expected shape. */
export const PROCFS_PARSE = 'PROCFS_PARSE';
/** Error code of a process (or thread) that does not exist (any more). */
export const NO_SUCH_PROCESS = 'NO_SUCH_PROCESS';

/** What a parse function calls instead of throwing when the caller wants to keep going. */
export type ParseErrorHandler = (err: CrtoolsError) => void;

/** Options every text parser accepts. */
export interface ParseOptions {
  /** The file the text came from, used in error messages (default '<input>'). */
  path?: string;
  /**
   * With keepGoing, a malformed line is reported through this callback and
   * skipped; without it the parser throws the CrtoolsError.
   */
  onError?: ParseErrorHandler;
}

/** A malformed line: CrtoolsError PROCFS_PARSE (exit code BAD_INPUT) naming the file and line. */
export function parseError(path: string | undefined, line: number, why: string, text?: string): CrtoolsError {
  const file = path ?? '<input>';
  const shown = text === undefined ? '' : `: ${JSON.stringify(text.length > 120 ? text.slice(0, 120) + '…' : text)}`;
  const context: ErrorContext = { path: file, line };
  if (text !== undefined) context.text = text;
  return new CrtoolsError(PROCFS_PARSE, `${file}:${line}: ${why}${shown}`, { context, exitCode: ExitCode.BAD_INPUT });
}

/** Report `err` through `opts.onError`, or throw it. */
export function report(opts: ParseOptions | undefined, err: CrtoolsError): void {
  if (opts?.onError) opts.onError(err);
  else throw err;
}

export function noSuchProcess(pid: number, path?: string, cause?: unknown): CrtoolsError {
  const context: ErrorContext = { pid };
  if (path) context.path = path;
  return new CrtoolsError(NO_SUCH_PROCESS, `no such process: ${pid}`, { context, exitCode: ExitCode.FAILED, cause });
}

/** The record a stream carries in place of a malformed line when keepGoing is on. */
export interface ParseErrorRecord {
  error: { code: string; message: string; path?: string; line?: number; text?: string };
}

export function errorRecord(err: CrtoolsError): ParseErrorRecord {
  const c = err.context;
  const rec: ParseErrorRecord['error'] = { code: err.code, message: err.message };
  if (typeof c.path === 'string') rec.path = c.path;
  if (typeof c.line === 'number') rec.line = c.line;
  if (typeof c.text === 'string') rec.text = c.text;
  return { error: rec };
}
