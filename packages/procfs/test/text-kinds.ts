/** Test helper: parse a golden input of a given kind from its text (or bytes). */
import {
  parseAuxv, parseCgroup, parseFdinfo, parseLimits, parseMaps, parseMountinfo, parseNulSeparated, parseSmaps,
  parseStat, parseStatus, parseTimers, iterMapsRaw, type ParseOptions,
} from '../src/index.js';

export type TextParser = (data: Buffer, opts: ParseOptions) => unknown;

const s = (b: Buffer) => b.toString('utf8');

export const TEXT_KINDS: Record<string, TextParser> = {
  maps: (b, o) => parseMaps(s(b), o),
  rawmaps: (b, o) => Array.from(iterMapsRaw(s(b), o)),
  smaps: (b, o) => parseSmaps(s(b), o),
  status: (b, o) => parseStatus(s(b), o),
  stat: (b, o) => parseStat(s(b), o),
  fdinfo: (b, o) => parseFdinfo(s(b), o),
  mountinfo: (b, o) => parseMountinfo(s(b), o),
  cgroup: (b, o) => parseCgroup(s(b), o),
  limits: (b, o) => parseLimits(s(b), o),
  timers: (b, o) => parseTimers(s(b), o),
  auxv: (b, o) => parseAuxv(b, o),
  cmdline: (b) => parseNulSeparated(b),
};
