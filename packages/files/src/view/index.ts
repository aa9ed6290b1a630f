/**
 * @crtools/files/view: how crit's explorers show files, by kind (src/kinds/<kind>/view.ts).
 */
import { num, type CritRecord, type SocketView, type ViewKind } from './kind.js';
import { regView } from '../kinds/reg/view.js';
import { pipeView } from '../kinds/pipe/view.js';
import { memfdView } from '../kinds/memfd/view.js';
import { unixView } from '../kinds/unix/view.js';
import { inetView } from '../kinds/inet/view.js';
import { netlinkView } from '../kinds/netlink/view.js';
import { packetView } from '../kinds/packet/view.js';

export type { CritRecord, SocketView } from './kind.js';

const VIEWS: readonly ViewKind[] = [regView, memfdView, pipeView, unixView, inetView, netlinkView, packetView];
const BY_TYPE = new Map(VIEWS.map((v) => [v.type, v]));

/** files.img types that are sockets (what `crit x sk` lists) */
export const SOCKET_FILE_TYPES: ReadonlySet<string> = new Set(VIEWS.filter((v) => v.socket).map((v) => v.type));

/** The record field of a files.img type (`REG` → `reg`), when a kind knows it. */
export function recordField(type: string): string | undefined {
  return BY_TYPE.get(type)?.field;
}

/** The name of one kind's record (from files.img or an older per-kind image), or undefined when the kind has none. */
export function recordName(type: string, record: CritRecord): string | undefined {
  return BY_TYPE.get(type)?.name?.(record);
}

/** A name for any files.img entry, whatever its kind (no other image looked at): TYPE.id when the kind has no name. */
export function describeFileEntry(fe: CritRecord): string {
  for (const v of VIEWS) {
    const rec = fe[v.field] as CritRecord | undefined;
    if (rec && v.name) {
      const n = v.name(rec);
      if (v.type !== 'REG' || rec.name) return n;
    }
  }
  return `${String(fe.type)}.${num(fe.id)}`;
}

/** The row of a socket's files.img entry, or undefined when it holds no socket record. */
export function describeSocketEntry(fe: CritRecord): SocketView | undefined {
  for (const v of VIEWS) {
    const rec = fe[v.field] as CritRecord | undefined;
    if (rec && v.socket) return v.socket(rec);
  }
  return undefined;
}
