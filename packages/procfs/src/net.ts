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

/** A socket's row in a /proc/PID/net table: its queues and, for IP ones, its state and peer. */
export interface SocketNetRow {
  /** the table: udp, udp6, udplite, udplite6, raw, raw6, icmp, icmp6, netlink, packet */
  table: string;
  /** bytes held by the receive queue (the memory its queued messages take) */
  receive: number;
  /** bytes held by the send queue (0 when the table has no column for it) */
  send: number;
  /** IP tables: the TCP-style state (1 established = connected, 7 close) */
  state?: number;
  /** IP tables: the remote address as the kernel's 32-bit words (in memory order) and its port */
  remote?: { words: number[]; port: number };
}

const IP_TABLES = ['udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6', 'icmp', 'icmp6'];

/** "0100007F:0035" (address words in hex, each a native u32; port in hex) */
function ipEndpoint(text: string): { words: number[]; port: number } | undefined {
  const m = /^([0-9A-F]+):([0-9A-F]{4})$/i.exec(text);
  if (!m || m[1]!.length % 8) return undefined;
  const words = m[1]!.match(/.{8}/g)!.map((w) => parseInt(w, 16) >>> 0);
  return { words, port: parseInt(m[2]!, 16) };
}

function parseRow(table: string, cols: string[]): SocketNetRow {
  if (table === 'netlink') return { table, receive: Number(cols[4]), send: Number(cols[5]) };
  if (table === 'packet') return { table, receive: Number(cols[6]), send: 0 };
  // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
  const [tx, rx] = (cols[4] ?? '').split(':');
  const row: SocketNetRow = { table, receive: parseInt(rx ?? '', 16), send: parseInt(tx ?? '', 16), state: parseInt(cols[3] ?? '', 16) };
  const remote = ipEndpoint(cols[2] ?? '');
  if (remote) row.remote = remote;
  return row;
}

/**
 * The row of datagram, raw, ping, netlink or packet socket inode `ino` in process pid's network
 * namespace tables (/proc/PID/net/...), or undefined when no table lists it (a table that cannot
 * be read is skipped).
 */
export function socketNetRow(pid: number, ino: number, opts?: ProcOptions): SocketNetRow | undefined {
  for (const table of [...IP_TABLES, 'netlink', 'packet']) {
    let text: string;
    try {
      text = readProcText(pid, `net/${table}`, opts).text;
    } catch {
      continue;
    }
    const inode = table === 'packet' ? 8 : 9;
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[inode] === String(ino)) return parseRow(table, cols);
    }
  }
  return undefined;
}
