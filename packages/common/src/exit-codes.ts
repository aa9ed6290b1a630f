/**
 * Exit codes shared by every crtools bin. Where CRIU's man page fixes a code
 * (criu check), the command follows the man page instead.
 */
export const ExitCode = {
  /** The operation succeeded. */
  OK: 0,
  /** The operation was attempted and failed. */
  FAILED: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** Input data (an image, a JSON document, a /proc file) was malformed. */
  BAD_INPUT: 3,
  /** The running kernel lacks a feature the operation needs. */
  UNSUPPORTED: 4,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
