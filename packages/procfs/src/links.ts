import { lstatSync } from 'node:fs';
import { parseError, report, type ParseOptions } from './errors.js';
import { mapProcError, procPath, readProcDir, readProcLink, type ProcOptions, type Target } from './read.js';

/** One namespace link: /proc/PID/ns/NAME -> "TYPE:[INODE]". */
export interface NsLink {
  /** Link name: cgroup, ipc, mnt, net, pid, pid_for_children, time, time_for_children, user, uts. */
  name: string;
  /** Namespace type from the link text. */
  type: string;
  ino: bigint;
}

export function parseNsLink(name: string, link: string, opts?: ParseOptions): NsLink {
  const m = /^([a-z_]+):\[(\d+)\]$/.exec(link);
  if (!m) throw parseError(opts?.path, 1, 'expected "type:[inode]"', link);
  return { name, type: m[1]!, ino: BigInt(m[2]!) };
}

/** All namespace links of a process, sorted by name. */
export function readNamespaces(target: Target, opts?: ProcOptions & ParseOptions): NsLink[] {
  const out: NsLink[] = [];
  for (const name of readProcDir(target, 'ns', opts).sort()) {
    try {
      out.push(parseNsLink(name, readProcLink(target, `ns/${name}`, opts), { ...opts, path: procPath(target, `ns/${name}`, opts) }));
    } catch (e) {
      report(opts, e as never);
    }
  }
  return out;
}

/** One /proc/PID/map_files entry: the area "start-end" and the file it maps. */
export interface MapFile {
  start: bigint;
  end: bigint;
  target: string;
  /**
   * With `{ modes: true }`: the open mode the link's permission bits give
   * (0o400 → O_RDONLY 0, 0o200 → O_WRONLY 1, 0o600 → O_RDWR 2), which CRIU
   * stores as VmaEntry.fdflags; undefined for other bit patterns.
   */
  fdflags?: number;
}

/** CRIU's fdflags from a map_files link's mode (vma_get_mapfile_flags). */
export function mapFileFdflags(mode: number): number | undefined {
  switch (mode & 0o600) {
    case 0o200: return 1;
    case 0o400: return 0;
    case 0o600: return 2;
    default: return undefined;
  }
}

/** Parse a map_files entry name "7f00…-7f01…". */
export function parseMapFileName(name: string, opts?: ParseOptions): { start: bigint; end: bigint } {
  const m = /^([0-9a-f]{1,16})-([0-9a-f]{1,16})$/.exec(name);
  if (!m) throw parseError(opts?.path, 1, 'expected "start-end"', name);
  return { start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) };
}

/**
 * The open mode (fdflags, as mapFileFdflags) of each map_files link by the start of its area, from
 * the links' permission bits alone: one lstat a link, no readlink (needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE, as readMapFiles). Links whose bits give no mode are left out.
 */
export function readMapFileModes(target: Target, opts?: ProcOptions & ParseOptions): Map<bigint, number> {
  const areas: { start: bigint; end: bigint }[] = [];
  for (const name of readProcDir(target, 'map_files', opts)) {
    try {
      areas.push(parseMapFileName(name, { ...opts, path: procPath(target, 'map_files', opts) }));
    } catch (e) {
      report(opts, e as never);
    }
  }
  return readMapFileModesOf(target, areas, opts);
}

/**
 * The open mode of the map_files links of the given areas only (their kernel start and end),
 * by the start: one lstat of `map_files/START-END` each, no directory read. The directory's
 * read walks every area of the process under its lock (~80 ms for 60,000 anonymous areas, of
 * which a dump wants none), and readMapFileModes lstats every link besides. An area without a
 * link (unmapped meanwhile, or no file) is left out, as are links whose bits give no mode.
 */
export function readMapFileModesOf(target: Target, areas: Iterable<{ start: bigint; end: bigint }>, opts?: ProcOptions): Map<bigint, number> {
  const out = new Map<bigint, number>();
  for (const a of areas) {
    const at = procPath(target, `map_files/${a.start.toString(16)}-${a.end.toString(16)}`, opts);
    let mode: number;
    try {
      mode = lstatSync(at).mode;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue;
      throw mapProcError(e, target, at, opts);
    }
    const f = mapFileFdflags(mode);
    if (f !== undefined) out.set(a.start, f);
  }
  return out;
}

/** Every map_files link (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), sorted by start. */
export function readMapFiles(target: Target, opts?: ProcOptions & ParseOptions & { modes?: boolean }): MapFile[] {
  const out: MapFile[] = [];
  for (const name of readProcDir(target, 'map_files', opts)) {
    let link: string;
    try {
      link = readProcLink(target, `map_files/${name}`, opts);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue; // unmapped meanwhile
      throw mapProcError(e, target, procPath(target, `map_files/${name}`, opts), opts);
    }
    try {
      const m: MapFile = { ...parseMapFileName(name, { ...opts, path: procPath(target, 'map_files', opts) }), target: link };
      if (opts?.modes) {
        try {
          const f = mapFileFdflags(lstatSync(procPath(target, `map_files/${name}`, opts)).mode);
          if (f !== undefined) m.fdflags = f;
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOENT') throw e;
        }
      }
      out.push(m);
    } catch (e) {
      report(opts, e as never);
    }
  }
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}
