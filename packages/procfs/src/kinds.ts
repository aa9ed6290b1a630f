import { CrtoolsError, ExitCode, hexReplacer, isCrtoolsError, PAGE_SHIFT } from '@crtools/common';
import { parseAuxv } from './auxv.js';
import { parseCgroup } from './cgroup.js';
import { errorRecord, type ParseOptions } from './errors.js';
import { parseFdinfo, parseFdinfoRaw, listFds, readFdLink } from './fd.js';
import { readMapFiles, readNamespaces } from './links.js';
import { iterMaps, iterMapsRaw, iterSmaps, vmaJson } from './maps.js';
import { parseLimits } from './limits.js';
import { parseLoginuid, parseOomScoreAdj, parsePersonality, parseTimerslack } from './misc.js';
import { parseMountinfo } from './mountinfo.js';
import { openPagemap, pagemapRecords } from './pagemap.js';
import { lines, setKey, readProcBytes, readProcText, type ProcOptions, type Target } from './read.js';
import { parseStat, parseStatRaw, schedFromStat } from './stat.js';
import { parseStatus, parseStatusRaw } from './status.js';
import { parseNulSeparated } from './strings.js';
import { listTasks, parseChildren, readChildren } from './tasks.js';
import { parseTimers } from './timers.js';

/** Options of one `procfs KIND PID` run. */
export interface ProcfsRunOptions extends ProcOptions {
  /** The kernel's fields as text instead of typed values. */
  raw?: boolean;
  /** Emit an error record for a malformed line and go on, instead of failing. */
  keepGoing?: boolean;
  /** maps/smaps: kerndat's stack_guard_gap_hidden (default false, see README). */
  stackGuardGapHidden?: boolean;
  /** pagemap: range to read (default: every area of maps except [vsyscall]). */
  start?: bigint;
  end?: bigint;
  /** pagemap: also pages with no bit set. */
  all?: boolean;
}

type Emit = (record: unknown) => void;

interface KindDef {
  /** One JSON document (true) or JSON Lines (false). */
  aggregate: boolean;
  description: string;
  run(pid: number, opts: ProcfsRunOptions, emit: Emit, popts: ParseOptions, write: (line: string) => void): void;
}

function text(pid: Target, name: string, opts: ProcfsRunOptions) {
  return readProcText(pid, name, opts);
}

const single = (file: string, parse: (t: string, o: ParseOptions) => unknown, description: string): KindDef => ({
  aggregate: true,
  description,
  run(pid, opts, emit, popts) {
    const { path, text: t } = text(pid, file, opts);
    emit(opts.raw ? t.replace(/\n$/, '') : parse(t, { ...popts, path }));
  },
});

/** Every KIND the bin knows, with what it reads. */
export const KINDS: Record<string, KindDef> = {
  maps: {
    aggregate: false,
    description: 'one record per line of /proc/PID/maps, classified as CRIU does',
    run(pid, opts, emit, popts, write) {
      const { path, text: t } = text(pid, 'maps', opts);
      const o = { ...popts, path, stackGuardGapHidden: opts.stackGuardGapHidden };
      if (opts.raw) for (const r of iterMapsRaw(t, o)) emit(r);
      else for (const v of iterMaps(t, o)) write(vmaJson(v) + '\n');
    },
  },
  smaps: {
    aggregate: false,
    description: 'maps plus VmFlags and counters of /proc/PID/smaps',
    run(pid, opts, emit, popts, write) {
      const { path, text: t } = text(pid, 'smaps', opts);
      if (opts.raw) {
        let cur: Record<string, string> | undefined;
        for (const l of lines(t)) {
          if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) {
            if (cur) emit(cur);
            cur = { header: l };
          } else if (cur) {
            const c = l.indexOf(':');
            setKey(cur, l.slice(0, c), l.slice(c + 1).trim());
          }
        }
        if (cur) emit(cur);
        return;
      }
      for (const v of iterSmaps(t, { ...popts, path, stackGuardGapHidden: opts.stackGuardGapHidden })) write(vmaJson(v) + '\n');
    },
  },
  pagemap: {
    aggregate: false,
    description: 'one record per page that is present or swapped (--all: every page)',
    run(pid, opts, emit, popts) {
      let ranges: [bigint, bigint][];
      if (opts.start !== undefined || opts.end !== undefined) {
        if (opts.start === undefined || opts.end === undefined) throw new CrtoolsError('USAGE', 'pagemap needs both --start and --end', { exitCode: ExitCode.USAGE });
        ranges = [[opts.start, opts.end]];
      } else {
        const { path, text: t } = text(pid, 'maps', opts);
        ranges = [];
        for (const v of iterMaps(t, { ...popts, path })) if (v.kind !== 'vsyscall') ranges.push([v.start, v.end]);
      }
      const r = openPagemap(pid, opts);
      try {
        for (const [s, e] of ranges) {
          const range = r.read(s, e);
          if (opts.raw) {
            for (let i = 0; i < range.entries.length; i++) {
              const v = range.entries[i]!;
              if (v !== 0n || opts.all) emit({ vaddr: (s + (BigInt(i) << BigInt(PAGE_SHIFT))).toString(16), entry: v.toString(16).padStart(16, '0') });
            }
          } else for (const p of pagemapRecords(range, { all: opts.all })) emit(p);
        }
      } finally {
        r.close();
      }
    },
  },
  status: {
    aggregate: true,
    description: '/proc/PID/status as one object',
    run(pid, opts, emit, popts) {
      const { path, text: t } = text(pid, 'status', opts);
      emit(opts.raw ? parseStatusRaw(t, { ...popts, path }) : parseStatus(t, { ...popts, path }));
    },
  },
  stat: {
    aggregate: true,
    description: '/proc/PID/stat as one object (comm may hold spaces and parentheses)',
    run(pid, opts, emit) {
      const { path, text: t } = text(pid, 'stat', opts);
      emit(opts.raw ? parseStatRaw(t, { path }) : parseStat(t, { path }));
    },
  },
  tasks: {
    aggregate: false,
    description: 'one record per thread: {tid, status, stat}',
    run(pid, opts, emit, popts) {
      for (const tid of listTasks(pid, opts)) {
        let st, sa;
        try {
          st = text({ pid, tid }, 'status', opts);
          sa = text({ pid, tid }, 'stat', opts);
        } catch (e) {
          if (isCrtoolsError(e) && e.code === 'NO_SUCH_PROCESS') continue; // thread exited meanwhile
          throw e;
        }
        emit(opts.raw
          ? { tid, status: parseStatusRaw(st.text, { ...popts, path: st.path }), stat: parseStatRaw(sa.text, { path: sa.path }) }
          : { tid, status: parseStatus(st.text, { ...popts, path: st.path }), stat: parseStat(sa.text, { path: sa.path }) });
      }
    },
  },
  children: {
    aggregate: true,
    description: 'pids of the children of every thread, as one array',
    run(pid, opts, emit) {
      if (opts.raw) {
        emit(listTasks(pid, opts).map((tid) => text({ pid, tid }, 'children', opts).text.trim()).join(' ').trim());
      } else emit(readChildren(pid, opts));
    },
  },
  fds: {
    aggregate: false,
    description: 'one record per descriptor: {fd, target, …fdinfo}',
    run(pid, opts, emit, popts) {
      for (const fd of listFds(pid, opts)) {
        let target: string, info: { path: string; text: string };
        try {
          target = readFdLink(pid, fd, opts);
          info = text(pid, `fdinfo/${fd}`, opts);
        } catch (e) {
          if ((e as { code?: string }).code === 'ENOENT') continue; // closed meanwhile
          throw e;
        }
        emit(opts.raw ? { fd: String(fd), target, fdinfo: parseFdinfoRaw(info.text) } : { fd, target, ...parseFdinfo(info.text, { ...popts, path: info.path }) });
      }
    },
  },
  mountinfo: {
    aggregate: false,
    description: 'one record per line of /proc/PID/mountinfo',
    run(pid, opts, emit, popts) {
      const { path, text: t } = text(pid, 'mountinfo', opts);
      if (opts.raw) for (const l of lines(t)) emit(l.split(' '));
      else for (const m of parseMountinfo(t, { ...popts, path })) emit(m);
    },
  },
  cgroup: {
    aggregate: false,
    description: 'one record per line of /proc/PID/cgroup',
    run(pid, opts, emit, popts) {
      const { path, text: t } = text(pid, 'cgroup', opts);
      if (opts.raw) for (const l of lines(t)) emit(l);
      else for (const c of parseCgroup(t, { ...popts, path })) emit(c);
    },
  },
  ns: {
    aggregate: false,
    description: 'one record per /proc/PID/ns/* link',
    run(pid, opts, emit, popts) {
      for (const n of readNamespaces(pid, { ...opts, ...popts })) emit(opts.raw ? { name: n.name, link: `${n.type}:[${n.ino}]` } : n);
    },
  },
  map_files: {
    aggregate: false,
    description: 'one record per /proc/PID/map_files link',
    run(pid, opts, emit, popts) {
      for (const m of readMapFiles(pid, { ...opts, ...popts })) emit(opts.raw ? { name: `${m.start.toString(16)}-${m.end.toString(16)}`, target: m.target } : m);
    },
  },
  auxv: {
    aggregate: false,
    description: 'one record per auxiliary vector entry, up to AT_NULL',
    run(pid, opts, emit) {
      const { path, data } = readProcBytes(pid, 'auxv', opts);
      for (const a of parseAuxv(data, { path })) emit(opts.raw ? { type: a.type.toString(), value: a.value.toString(16) } : a);
    },
  },
  limits: {
    aggregate: false,
    description: 'one record per resource limit',
    run(pid, opts, emit, popts) {
      const { path, text: t } = text(pid, 'limits', opts);
      if (opts.raw) for (const l of lines(t).slice(1)) emit({ name: l.slice(0, 25).trimEnd(), fields: l.slice(25).trim().split(/\s+/) });
      else for (const l of parseLimits(t, { ...popts, path })) emit(l);
    },
  },
  cmdline: {
    aggregate: true,
    description: 'the command line as an array of strings',
    run(pid, opts, emit) {
      emit(parseNulSeparated(readProcBytes(pid, 'cmdline', opts).data));
    },
  },
  environ: {
    aggregate: true,
    description: 'the environment as an array of "KEY=value" strings',
    run(pid, opts, emit) {
      emit(parseNulSeparated(readProcBytes(pid, 'environ', opts).data));
    },
  },
  timers: {
    aggregate: false,
    description: 'one record per POSIX timer of /proc/PID/timers',
    run(pid, opts, emit, popts) {
      const { path, text: t } = text(pid, 'timers', opts);
      if (opts.raw) {
        let cur: Record<string, string> | undefined;
        for (const l of lines(t)) {
          const c = l.indexOf(':');
          const k = l.slice(0, c), v = l.slice(c + 1).trim();
          if (k === 'ID') {
            if (cur) emit(cur);
            cur = {};
          }
          if (cur) setKey(cur, k, v);
        }
        if (cur) emit(cur);
      } else for (const x of parseTimers(t, { ...popts, path })) emit(x);
    },
  },
  timerslack_ns: single('timerslack_ns', parseTimerslack, 'timer slack in ns'),
  loginuid: single('loginuid', parseLoginuid, 'login uid (4294967295: unset)'),
  oom_score_adj: single('oom_score_adj', parseOomScoreAdj, 'OOM score adjustment'),
  personality: single('personality', parsePersonality, 'personality flags'),
  sched: {
    aggregate: true,
    description: 'scheduling policy, RT priority and nice (from stat)',
    run(pid, opts, emit) {
      const { path, text: t } = text(pid, 'stat', opts);
      const s = parseStat(t, { path });
      emit(opts.raw ? { policy: String(s.policy), rt_priority: String(s.rtPriority), nice: String(s.nice) } : schedFromStat(s));
    },
  },
};
KINDS.fdinfo = KINDS.fds!;

/** Serialize one record as a line of JSON (bigint as hex strings). */
export function toJsonLine(record: unknown): string {
  return JSON.stringify(record, hexReplacer);
}

/**
 * The core of the `procfs` bin: read KIND of PID, write JSON (one document, or
 * JSON Lines) through `write`, return the exit code. Throws CrtoolsError for
 * usage errors, a missing process and (without keepGoing) malformed input.
 * With keepGoing, malformed lines become {"error": …} records and the exit
 * code is BAD_INPUT.
 */
export function runProcfs(kind: string, pid: number, write: (chunk: string) => void, opts: ProcfsRunOptions = {}): number {
  const def = Object.prototype.hasOwnProperty.call(KINDS, kind) ? KINDS[kind] : undefined;
  if (!def) throw new CrtoolsError('USAGE', `unknown kind "${kind}" (one of: ${Object.keys(KINDS).join(', ')})`, { exitCode: ExitCode.USAGE });
  if (!Number.isInteger(pid) || pid <= 0) throw new CrtoolsError('USAGE', `not a pid: ${pid}`, { exitCode: ExitCode.USAGE });
  let errors = 0;
  const popts: ParseOptions = {};
  const emit = (r: unknown) => write(toJsonLine(r) + '\n');
  if (opts.keepGoing)
    popts.onError = (e) => {
      errors++;
      emit(errorRecord(e));
    };
  def.run(pid, opts, emit, popts, write);
  return errors > 0 ? ExitCode.BAD_INPUT : ExitCode.OK;
}
