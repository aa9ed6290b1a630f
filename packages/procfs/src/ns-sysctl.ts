/**
 * The files under /proc that a namespace's state is read from, as a task inside the namespace
 * sees them (the caller reads them from there, e.g. through @crtools/sys' namespaceFiles), and
 * their parsers: the UTS names, the IPC sysctls (CRIU's ipc-var), the SysV IPC object lists.
 */

/** A UTS namespace's names. */
export const UTS_FILES = { nodename: '/proc/sys/kernel/hostname', domainname: '/proc/sys/kernel/domainname' } as const;

/** One line of a /proc/sys file with its newline dropped. */
export function parseSysctlString(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * An IPC namespace's sysctls, by the ipc_var_entry field each fills, with its file and how it
 * reads: `u32[]` (kernel/sem: four numbers), `u32`, `u64`. `optional`: absent from some kernels
 * (auto_msgmni went in 3.19; the mqueue ones need CONFIG_POSIX_MQUEUE), read as 0 / not kept.
 */
export const IPC_VAR_SYSCTLS = [
  { field: 'sem_ctls', path: '/proc/sys/kernel/sem', type: 'u32[]' },
  { field: 'msg_ctlmax', path: '/proc/sys/kernel/msgmax', type: 'u32' },
  { field: 'msg_ctlmnb', path: '/proc/sys/kernel/msgmnb', type: 'u32' },
  { field: 'msg_ctlmni', path: '/proc/sys/kernel/msgmni', type: 'u32' },
  { field: 'auto_msgmni', path: '/proc/sys/kernel/auto_msgmni', type: 'u32', optional: true },
  { field: 'shm_ctlmax', path: '/proc/sys/kernel/shmmax', type: 'u64' },
  { field: 'shm_ctlall', path: '/proc/sys/kernel/shmall', type: 'u64' },
  { field: 'shm_ctlmni', path: '/proc/sys/kernel/shmmni', type: 'u32' },
  { field: 'shm_rmid_forced', path: '/proc/sys/kernel/shm_rmid_forced', type: 'u32' },
  { field: 'mq_queues_max', path: '/proc/sys/fs/mqueue/queues_max', type: 'u32', optional: true },
  { field: 'mq_msg_max', path: '/proc/sys/fs/mqueue/msg_max', type: 'u32', optional: true },
  { field: 'mq_msgsize_max', path: '/proc/sys/fs/mqueue/msgsize_max', type: 'u32', optional: true },
  { field: 'mq_msg_default', path: '/proc/sys/fs/mqueue/msg_default', type: 'u32', optional: true },
  { field: 'mq_msgsize_default', path: '/proc/sys/fs/mqueue/msgsize_default', type: 'u32', optional: true },
  { field: 'msg_next_id', path: '/proc/sys/kernel/msg_next_id', type: 'u32', optional: true },
  { field: 'sem_next_id', path: '/proc/sys/kernel/sem_next_id', type: 'u32', optional: true },
  { field: 'shm_next_id', path: '/proc/sys/kernel/shm_next_id', type: 'u32', optional: true },
] as const;

export type IpcVarField = (typeof IPC_VAR_SYSCTLS)[number]['field'];

/** The value of one IPC sysctl's file: a number (u32 as a number, u64 as a bigint) or kernel/sem's four. */
export function parseIpcSysctl(type: 'u32' | 'u64' | 'u32[]', text: string): number | bigint | number[] {
  const words = text.trim().split(/\s+/);
  if (type === 'u32[]') return words.map((w) => Number(w) >>> 0);
  // the *_next_id files read -1 until set; as u32 that is 0xffffffff
  return type === 'u64' ? BigInt.asUintN(64, BigInt(words[0]!)) : Number(words[0]) >>> 0;
}

/** The SysV IPC object lists of an IPC namespace (one header line, then one line per object). */
export const SYSVIPC_FILES = { shm: '/proc/sysvipc/shm', sem: '/proc/sysvipc/sem', msg: '/proc/sysvipc/msg' } as const;

/** How many objects a /proc/sysvipc list shows (the lines after its header). */
export function countSysvipc(text: string): number {
  return text.split('\n').slice(1).filter((l) => l.trim() !== '').length;
}

/** What is written to one IPC sysctl's file to set it (parseIpcSysctl's inverse). */
export function formatIpcSysctl(type: 'u32' | 'u64' | 'u32[]', value: unknown): string {
  return Array.isArray(value) ? value.map((v) => String(v)).join(' ') : String(value);
}
