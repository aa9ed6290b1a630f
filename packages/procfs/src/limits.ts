import { parseError, report, type ParseOptions } from './errors.js';
import { lines, readProcText, type ProcOptions, type Target } from './read.js';

/** RLIM_INFINITY as the kernel and CRIU's images store it. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** Resource names in the kernel's order (RLIMIT_* numbers 0…15), as /proc/PID/limits lists them. */
const RESOURCES: [string, string][] = [
  ['Max cpu time', 'RLIMIT_CPU'], ['Max file size', 'RLIMIT_FSIZE'], ['Max data size', 'RLIMIT_DATA'],
  ['Max stack size', 'RLIMIT_STACK'], ['Max core file size', 'RLIMIT_CORE'], ['Max resident set', 'RLIMIT_RSS'],
  ['Max processes', 'RLIMIT_NPROC'], ['Max open files', 'RLIMIT_NOFILE'], ['Max locked memory', 'RLIMIT_MEMLOCK'],
  ['Max address space', 'RLIMIT_AS'], ['Max file locks', 'RLIMIT_LOCKS'], ['Max pending signals', 'RLIMIT_SIGPENDING'],
  ['Max msgqueue size', 'RLIMIT_MSGQUEUE'], ['Max nice priority', 'RLIMIT_NICE'], ['Max realtime priority', 'RLIMIT_RTPRIO'],
  ['Max realtime timeout', 'RLIMIT_RTTIME'],
];
const BY_NAME = new Map(RESOURCES.map(([n, r], i) => [n, { resource: r, index: i }]));

export interface Limit {
  /** 'Max open files' */
  name: string;
  /** 'RLIMIT_NOFILE' */
  resource: string;
  /** RLIMIT_* number. */
  index: number;
  /** RLIM_INFINITY when 'unlimited'. */
  soft: bigint;
  hard: bigint;
  units: string;
}

function value(s: string): bigint | undefined {
  if (s === 'unlimited') return RLIM_INFINITY;
  return /^\d{1,20}$/.test(s) ? BigInt(s) : undefined;
}

/** Parse /proc/PID/limits: a header, then "%-25s %-20s %-20s %-10s" rows. */
export function parseLimits(text: string, opts?: ParseOptions): Limit[] {
  const ls = lines(text);
  const out: Limit[] = [];
  if (ls.length === 0) return out;
  if (!ls[0]!.startsWith('Limit ')) report(opts, parseError(opts?.path, 1, 'expected the "Limit  Soft Limit  Hard Limit  Units" header', ls[0]));
  for (let i = 1; i < ls.length; i++) {
    const l = ls[i]!;
    // The name column is 25 wide and may hold spaces; the rest is space-separated.
    const name = l.slice(0, 25).trimEnd();
    const rest = l.slice(25).trim().split(/\s+/);
    const r = BY_NAME.get(name);
    const soft = value(rest[0] ?? '');
    const hard = value(rest[1] ?? '');
    if (!r || soft === undefined || hard === undefined || rest.length > 3) {
      report(opts, parseError(opts?.path, i + 1, r ? 'bad limit values' : 'unknown limit', l));
      continue;
    }
    out.push({ name, resource: r.resource, index: r.index, soft, hard, units: rest[2] ?? '' });
  }
  return out;
}

export function readLimits(target: Target, opts?: ProcOptions): Limit[] {
  const { path, text } = readProcText(target, 'limits', opts);
  return parseLimits(text, { path });
}
