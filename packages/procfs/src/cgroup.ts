import { parseError, report, type ParseOptions } from './errors.js';
import { lines, readProcText, type ProcOptions, type Target } from './read.js';

/** One line of /proc/PID/cgroup: "hierarchy-id:controller-list:path". */
export interface CgroupEntry {
  hierarchy: number;
  /** Controllers, e.g. ['cpu', 'cpuacct'] or ['name=systemd']; [] for cgroup v2. */
  controllers: string[];
  path: string;
}

export function* iterCgroup(text: string, opts?: ParseOptions): Generator<CgroupEntry> {
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i]!;
    const a = l.indexOf(':');
    const b = a < 0 ? -1 : l.indexOf(':', a + 1);
    // The path may itself contain ':'; only the first two colons separate fields.
    if (a <= 0 || b < 0 || !/^\d+$/.test(l.slice(0, a))) {
      report(opts, parseError(opts?.path, i + 1, 'expected "id:controllers:path"', l));
      continue;
    }
    const ctl = l.slice(a + 1, b);
    yield { hierarchy: Number(l.slice(0, a)), controllers: ctl === '' ? [] : ctl.split(','), path: l.slice(b + 1) };
  }
}

export function parseCgroup(text: string, opts?: ParseOptions): CgroupEntry[] {
  return Array.from(iterCgroup(text, opts));
}

export function readCgroup(target: Target, opts?: ProcOptions): CgroupEntry[] {
  const { path, text } = readProcText(target, 'cgroup', opts);
  return parseCgroup(text, { path });
}
