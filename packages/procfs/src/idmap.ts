/**
 * /proc/PID/uid_map and gid_map: the extents of a user namespace's id mapping as the reader's
 * user namespace sees them, one line per extent, "<first inside> <first outside> <count>". The
 * same text, all lines in one write, maps a new user namespace (formatIdMap). An id outside every
 * extent has no counterpart: inside, the kernel shows it as the overflow id (65534).
 */
import { readFileSync } from 'node:fs';
import { parseError, type ParseOptions } from './errors.js';
import { readProcText, type ProcOptions, type Target } from './read.js';

/** One extent of a uid or gid map (the fields of CRIU's uid_gid_extent). */
export interface IdExtent {
  /** the first id inside the namespace */
  first: number;
  /** the id it stands for in the parent namespace */
  lowerFirst: number;
  count: number;
}

/** An id that one side of a map has no counterpart for (CRIU's INVALID_ID). */
export const UNMAPPED_ID = 0xffffffff;

export function parseIdMap(text: string, opts?: ParseOptions): IdExtent[] {
  const out: IdExtent[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})$/.exec(line.trim());
    if (!m) throw parseError(opts?.path, i + 1, 'expected "FIRST LOWER_FIRST COUNT"', line);
    out.push({ first: Number(m[1]), lowerFirst: Number(m[2]), count: Number(m[3]) });
  });
  return out;
}

/** The text written to uid_map or gid_map (one write holds every extent). */
export function formatIdMap(map: readonly IdExtent[]): string {
  return map.map((e) => `${e.first >>> 0} ${e.lowerFirst >>> 0} ${e.count >>> 0}\n`).join('');
}

export const readUidMap = (t: Target, o?: ProcOptions): IdExtent[] => {
  const r = readProcText(t, 'uid_map', o);
  return parseIdMap(r.text, { path: r.path });
};

export const readGidMap = (t: Target, o?: ProcOptions): IdExtent[] => {
  const r = readProcText(t, 'gid_map', o);
  return parseIdMap(r.text, { path: r.path });
};

/** The id inside the namespace of `id` as the parent sees it (UNMAPPED_ID: none), as CRIU's userns_uid. */
export function idInside(map: readonly IdExtent[], id: number): number {
  const e = map.find((x) => x.lowerFirst <= id && id - x.lowerFirst < x.count);
  return e ? e.first + (id - e.lowerFirst) : UNMAPPED_ID;
}

/** The id in the parent namespace of `id` inside it (UNMAPPED_ID: none), as CRIU's host_uid. */
export function idOutside(map: readonly IdExtent[], id: number): number {
  const e = map.find((x) => x.first <= id && id - x.first < x.count);
  return e ? e.lowerFirst + (id - e.first) : UNMAPPED_ID;
}

const overflow: Partial<Record<'uid' | 'gid', number>> = {};

/**
 * The id an unmapped one shows as inside a user namespace (/proc/sys/kernel/overflowuid and
 * overflowgid, 65534 unless set otherwise), as CRIU writes an owner its namespace does not map.
 */
export function overflowId(kind: 'uid' | 'gid'): number {
  if (overflow[kind] === undefined) {
    try {
      overflow[kind] = Number.parseInt(readFileSync(`/proc/sys/kernel/overflow${kind}`, 'utf8'), 10);
    } catch {
      overflow[kind] = 65534;
    }
  }
  return overflow[kind]!;
}
