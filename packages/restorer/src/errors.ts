import { CrtoolsError, ExitCode } from '@crtools/common';

export const RestoreErrorCode = {
  PID_IN_USE: 'RESTORE_PID_IN_USE',
  NO_HOLE: 'RESTORE_NO_HOLE',
  LAUNCH: 'RESTORE_LAUNCH_FAILED',
  TASK: 'RESTORE_TASK_FAILED',
  DIED: 'RESTORE_TASK_DIED',
  TIMEOUT: 'RESTORE_TIMEOUT',
  BAD_PLAN: 'RESTORE_BAD_PLAN',
  CPU: 'RESTORE_CPU_MISMATCH',
  GUARDS: 'RESTORE_NO_GUARD_REGIONS',
  UNSUPPORTED: 'RESTORE_UNSUPPORTED',
  INTERRUPTED: 'RESTORE_INTERRUPTED',
} as const;

export function restoreError(code: string, message: string, context: Record<string, unknown> = {}, exitCode: ExitCode = ExitCode.FAILED, cause?: unknown): CrtoolsError {
  return new CrtoolsError(code, message, { exitCode, context, cause });
}
