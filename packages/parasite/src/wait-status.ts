/** A decoded waitpid() status. */
export interface WaitStatus {
  /** The task is in a ptrace-stop. */
  stopped: boolean;
  /** Signal of the stop (SIGTRAP for traps and interrupts, the group-stop signal, or a signal being delivered). */
  stopSignal: number;
  /** PTRACE_EVENT_* in status >> 16 (128 = PTRACE_EVENT_STOP). */
  event: number;
  /** Exit code when the task exited. */
  exitCode?: number;
  /** Terminating signal when the task was killed. */
  termSignal?: number;
}

export const PTRACE_EVENT_STOP = 128;

export function decodeWaitStatus(status: number): WaitStatus {
  if ((status & 0xff) === 0x7f) {
    return { stopped: true, stopSignal: (status >> 8) & 0xff, event: (status >> 16) & 0xff };
  }
  if ((status & 0x7f) === 0) return { stopped: false, stopSignal: 0, event: 0, exitCode: (status >> 8) & 0xff };
  return { stopped: false, stopSignal: 0, event: 0, termSignal: status & 0x7f };
}
