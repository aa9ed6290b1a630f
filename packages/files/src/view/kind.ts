/**
 * What a file kind shows in crit's explorers (`crit x fds`, `crit x sk`): a name for the file
 * and, for sockets, one row. Records are crit JSON values (as `crit decode` prints them).
 */
import { jsonNumber as num, type JsonValue } from '@crtools/images';
import { SOCK_TYPE, TCP_STATE, namesOf } from '@crtools/images/facts';

export { num };
export type CritRecord = { [k: string]: JsonValue };

/** One socket as `crit x sk` lists it. */
export interface SocketView {
  kind: string;
  ino?: number;
  type?: string;
  state?: string;
  local?: string;
  peer?: string;
}

export interface ViewKind {
  /** files.img type and the entry's field that holds this kind's record */
  type: string;
  field: string;
  /** the name crit gives such a file (absent: TYPE.id) */
  name?(record: CritRecord): string;
  /** a socket's row */
  socket?(record: CritRecord): SocketView;
}

/** A crit value naming a constant: its lower-case string as crit prints it, or the name of a number. */
export function named(map: Record<number, string>, v: JsonValue | undefined): string {
  if (typeof v === 'string') return v;
  const n = num(v);
  return map[n] ?? String(n);
}

/** A table of constant names in lower case (as crit prints socket types and protocols). */
export const lower = (t: Record<number, string>): Record<number, string> => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.toLowerCase()]));

/** socket types and TCP states by number, as crit prints them */
export const SOCK_TYPES = lower(namesOf(SOCK_TYPE));
export const TCP_STATES = namesOf(TCP_STATE);
