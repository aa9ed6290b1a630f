/** TaskCoreEntry.task_state (core-<pid>.img), as CRIU's TASK_* (criu/include/pstree.h). */
export const TASK_STATE = { ALIVE: 1, DEAD: 2, STOPPED: 3, HELPER: 4, THREAD: 5 } as const;

/**
 * The namespaces CRIU records for a task (ids-<pid>.img `<ns>_ns_id`), in the order it
 * numbers them when every task shares the root's (ids 1..8).
 */
export const NS_KINDS = ['pid', 'net', 'ipc', 'uts', 'time', 'mnt', 'user', 'cgroup'] as const;
export type NsKind = (typeof NS_KINDS)[number];

/** PosixTimerEntry.it_sigev_notify (SIGEV_* of <signal.h>). */
export const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2, THREAD_ID: 4 } as const;
