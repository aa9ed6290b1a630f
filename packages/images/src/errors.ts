import { CrtoolsError, ExitCode } from '@crtools/common';

/** Error codes thrown by this package (all with exitCode BAD_INPUT unless noted). */
export const ImageErrorCode = {
  /** The file ends before a magic, a length prefix, an entry or a payload is complete. */
  TRUNCATED: 'IMG_TRUNCATED',
  /** The magic word is not one CRIU knows, or does not fit the requested kind. */
  BAD_MAGIC: 'IMG_BAD_MAGIC',
  /** An entry's protobuf bytes do not decode with the image's message type, or a length is impossible. */
  BAD_ENTRY: 'IMG_BAD_ENTRY',
  /** An object or JSON document does not have the shape the image's schema wants. */
  JSON_BAD_SHAPE: 'JSON_BAD_SHAPE',
  /** Text passed as crit JSON is not JSON. */
  JSON_SYNTAX: 'JSON_SYNTAX',
  /** The .proto schemas could not be loaded (exitCode FAILED). */
  SCHEMA: 'IMG_SCHEMA',
} as const;

export interface Where {
  file?: string;
  offset?: number;
}

function place(w: Where): string {
  const f = w.file ?? '<buffer>';
  return w.offset === undefined ? f : `${f} at byte ${w.offset}`;
}

/** Build a BAD_INPUT CrtoolsError whose message names file, byte offset and problem in one line. */
export function imageError(code: string, where: Where, problem: string, cause?: unknown): CrtoolsError {
  return new CrtoolsError(code, `${place(where)}: ${problem}`, {
    exitCode: ExitCode.BAD_INPUT,
    context: { path: where.file, offset: where.offset },
    cause,
  });
}

export function shapeError(path: string, problem: string, file?: string): CrtoolsError {
  return new CrtoolsError(ImageErrorCode.JSON_BAD_SHAPE, `${file ? file + ': ' : ''}${path}: ${problem}`, {
    exitCode: ExitCode.BAD_INPUT,
    context: { path: file, field: path },
  });
}
