import { readProcText, type ProcOptions } from './read.js';

/** The /proc/PID/net tables that list sockets, with the column holding each row's inode. */
const SOCKET_TABLES: readonly { file: string; name: string; inodeColumn: number }[] = [
  { file: 'tcp', name: 'TCP', inodeColumn: 9 },
  { file: 'tcp6', name: 'TCP6', inodeColumn: 9 },
  { file: 'udp', name: 'UDP', inodeColumn: 9 },
  { file: 'udp6', name: 'UDP6', inodeColumn: 9 },
  { file: 'unix', name: 'UNIX', inodeColumn: 6 },
  { file: 'raw', name: 'RAW', inodeColumn: 9 },
  { file: 'netlink', name: 'NETLINK', inodeColumn: 9 },
  { file: 'packet', name: 'PACKET', inodeColumn: 8 },
];

/**
 * Which kind of socket inode `ino` is in the network namespace of process `pid`, by the
 * /proc/PID/net table that lists it ('TCP', 'UDP6', 'UNIX', 'NETLINK', ...), or undefined
 * when no table does (a table that cannot be read is skipped).
 */
export function socketTableOf(pid: number, ino: number, opts?: ProcOptions): string | undefined {
  for (const t of SOCKET_TABLES) {
    let text: string;
    try {
      text = readProcText(pid, `net/${t.file}`, opts).text;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      if (line.trim().split(/\s+/)[t.inodeColumn] === String(ino)) return t.name;
    }
  }
  return undefined;
}
