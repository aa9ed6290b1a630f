/** TaskCoreEntry.task_state (core-<pid>.img), as CRIU's TASK_* (criu/include/pstree.h). */
export const TASK_STATE = { ALIVE: 1, DEAD: 2, STOPPED: 3, HELPER: 4, THREAD: 5 } as const;

/**
 * The namespaces CRIU records for a task (ids-<pid>.img `<ns>_ns_id`), in the order it
 * numbers them when every task shares the root's (ids 1..8).
 */
export const NS_KINDS = ['pid', 'net', 'ipc', 'uts', 'time', 'mnt', 'user', 'cgroup'] as const;
export type NsKind = (typeof NS_KINDS)[number];

/** The CLONE_NEW* flag of each kind of namespace (ns_file_entry.ns_cflag, setns(2)'s nstype). */
export const NS_CLONE_FLAG: Readonly<Record<NsKind, number>> = {
  pid: 0x20000000, net: 0x40000000, ipc: 0x08000000, uts: 0x04000000, time: 0x80, mnt: 0x20000, user: 0x10000000, cgroup: 0x02000000,
};

/** PosixTimerEntry.it_sigev_notify (SIGEV_* of <signal.h>). */
export const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2, THREAD_ID: 4 } as const;

/**
 * TaskCoreEntry.stop_signo of a TASK_STOPPED task: the signal whose group-stop it was in
 * (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU; x86_64 numbers).
 */
export const STOP_SIGNALS = { SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22 } as const;

/** sig when it is one of STOP_SIGNALS, else 0. */
export function stopSignal(sig: number): number {
  return sig >= STOP_SIGNALS.SIGSTOP && sig <= STOP_SIGNALS.SIGTTOU ? sig : 0;
}

/**
 * mm_entry.coredump_filter (crtools' own field) when absent: the kernel's default
 * MMF_DUMP_FILTER_DEFAULT (anonymous private and shared, ELF headers, private huge pages).
 * The dump leaves the field out for this value, so the mm image of an ordinary process holds
 * only CRIU's fields and CRIU's crit decodes and re-encodes it byte for byte; the restore sets
 * this value when the field is absent.
 */
export const COREDUMP_FILTER_DEFAULT = 0x33;
