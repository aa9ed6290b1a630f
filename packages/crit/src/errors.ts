import { CrtoolsError, ExitCode } from '@crtools/common';

/**
 * Error codes of crit (all CrtoolsError, exit code BAD_INPUT unless said otherwise):
 * - CRIT_BAD_JSON: the JSON given to `encode` is not valid JSON or not a crit image document
 * - CRIT_BAD_IMAGE: an image file could not be decoded (truncated, bad magic, bad entry)
 * - CRIT_RAW_IMAGE: the file is a raw data image (pages-N.img…) with no entries to decode
 * - CRIT_NO_FILE: an input file or image directory does not exist (exit FAILED)
 * - CRIT_IMAGE_DIR: an image directory lacks an image a view needs
 * - CRIT_ARCHIVE: a checkpoint archive (crit x) is not a tar, is cut short or holds no images
 */
export type CritErrorCode = 'CRIT_BAD_JSON' | 'CRIT_BAD_IMAGE' | 'CRIT_RAW_IMAGE' | 'CRIT_NO_FILE' | 'CRIT_IMAGE_DIR' | 'CRIT_ARCHIVE';

/** One line: "<file> at byte <offset>: <problem>" (the same form as @crtools/images errors). */
export function badInput(code: CritErrorCode, file: string, offset: number | bigint | undefined, problem: string, cause?: unknown): CrtoolsError {
  const where = offset === undefined ? '' : ` at byte ${offset}`;
  return new CrtoolsError(code, `${file}${where}: ${problem}`, {
    exitCode: ExitCode.BAD_INPUT,
    context: { path: file, image: file, offset },
    cause,
  });
}

/** A command-line mistake (exit USAGE). */
export function usage(msg: string): CrtoolsError {
  return new CrtoolsError('CRIT_USAGE', msg, { exitCode: ExitCode.USAGE });
}

export function noFile(file: string, cause?: unknown): CrtoolsError {
  return new CrtoolsError('CRIT_NO_FILE', `${file}: no such file or directory`, {
    exitCode: ExitCode.FAILED,
    context: { path: file },
    cause,
  });
}
