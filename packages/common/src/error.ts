import { ExitCode } from './exit-codes.js';

const BRAND = Symbol.for('crtools.error');

/** Context that helps a user find what failed. All fields are optional. */
export interface ErrorContext {
  pid?: number;
  path?: string;
  image?: string;
  offset?: number | bigint;
  line?: number;
  [key: string]: unknown;
}

/**
 * The one error family of crtools. `code` is a stable string (e.g. 'IMG_TRUNCATED'),
 * `exitCode` is what a bin should exit with, `context` says where.
 * Detect it with `isCrtoolsError`, which works across copies of this package.
 */
export class CrtoolsError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly context: ErrorContext;

  constructor(code: string, message: string, opts: { context?: ErrorContext; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CrtoolsError';
    this.code = code;
    this.exitCode = opts.exitCode ?? ExitCode.FAILED;
    this.context = opts.context ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }
}

export function isCrtoolsError(e: unknown): e is CrtoolsError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** A failed system call, shaped like Node's own errors (errno, code, syscall). */
export interface SyscallError extends Error {
  errno: number;
  code: string;
  syscall: string;
  pid?: number;
  path?: string;
}

/**
 * Build a Node-shaped syscall error from the errno a native call reported.
 * `errno` is positive (as the native layer reports it).
 */
export function syscallError(syscall: string, errno: number, extra: { pid?: number; path?: string; message?: string } = {}): SyscallError {
  const code = errnoName(errno);
  const where = extra.path ? ` '${extra.path}'` : extra.pid !== undefined ? ` (pid ${extra.pid})` : '';
  const err = new Error(`${syscall}${where}: ${code}${extra.message ? `, ${extra.message}` : ''}`) as SyscallError;
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (extra.pid !== undefined) err.pid = extra.pid;
  if (extra.path !== undefined) err.path = extra.path;
  return err;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG', 8: 'ENOEXEC',
  9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY',
  17: 'EEXIST', 18: 'EXDEV', 19: 'ENODEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 23: 'ENFILE',
  24: 'EMFILE', 25: 'ENOTTY', 26: 'ETXTBSY', 27: 'EFBIG', 28: 'ENOSPC', 29: 'ESPIPE', 30: 'EROFS',
  32: 'EPIPE', 34: 'ERANGE', 36: 'ENAMETOOLONG', 38: 'ENOSYS', 39: 'ENOTEMPTY', 40: 'ELOOP',
  61: 'ENODATA', 75: 'EOVERFLOW', 88: 'ENOTSOCK', 95: 'EOPNOTSUPP', 104: 'ECONNRESET', 107: 'ENOTCONN', 110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
};

export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO_NAMES[n] ?? `E${n}`;
}

/** One line for a user: the message, and the code when it adds something. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
