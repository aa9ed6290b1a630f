/**
 * The cgroup properties a dump saves per controller: CRIU 4.2's built-in lists, changed by
 * --cgroup-props TEXT and then --cgroup-props-file FILE (criu.8; RPC cgroup_props and
 * cgroup_props_file), in CRIU's form, a small YAML subset, one block per controller:
 *
 *   "cpu":
 *    - "strategy": "replace"
 *    - "properties": ["cpu.shares", "cpu.cfs_period_us"]
 *
 * "replace" puts the list in place of the controller's, "merge" adds it to the end of it; a
 * controller not known yet gets the list either way. The global properties of every v1 or v2
 * directory are not changed by these.
 */
import { CrtoolsError, ExitCode } from '@crtools/common';

/** CRIU 4.2's built-in list per controller (its predefined stream, all "replace"). */
export const BUILTIN_PROPS: Readonly<Record<string, readonly string[]>> = {
  cpu: ['cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'],
  memory: [
    'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness', 'memory.soft_limit_in_bytes', 'memory.move_charge_at_immigrate',
    'memory.oom_control', 'memory.use_hierarchy', 'memory.kmem.limit_in_bytes', 'memory.kmem.tcp.limit_in_bytes',
  ],
  cpuset: [
    'cpuset.cpus', 'cpuset.mems', 'cpuset.memory_migrate', 'cpuset.cpu_exclusive', 'cpuset.mem_exclusive', 'cpuset.mem_hardwall',
    'cpuset.memory_spread_page', 'cpuset.memory_spread_slab', 'cpuset.sched_load_balance', 'cpuset.sched_relax_domain_level',
  ],
  blkio: ['blkio.weight'],
  freezer: [],
  perf_event: [],
  net_cls: ['net_cls.classid'],
  net_prio: ['net_prio.ifpriomap'],
  pids: ['pids.max'],
  devices: ['devices.list'],
};

export interface PropsBlock {
  controller: string;
  strategy: 'merge' | 'replace';
  properties: string[];
}

function bad(source: string, why: string): CrtoolsError {
  return new CrtoolsError('USAGE', `${source}: ${why}`, { exitCode: ExitCode.USAGE, context: { option: source.startsWith('--cgroup-props-file') ? 'cgroup_props_file' : 'cgroup_props' } });
}

/** The blocks of one description, in order; a text CRIU would not take is a usage error naming where. */
export function parseCgroupProps(text: string, source = '--cgroup-props'): PropsBlock[] {
  const out: PropsBlock[] = [];
  const s = text;
  let i = 0;
  const spaces = () => {
    while (s[i] === ' ' || s[i] === '\t') i++;
  };
  const at = () => `at offset ${i}`;
  const quoted = (what: string): string => {
    spaces();
    if (s[i] !== '"') throw bad(source, `expected ${what} in quotes ${at()}`);
    const end = s.indexOf('"', i + 1);
    if (end < 0 || end === i + 1) throw bad(source, `expected ${what} in quotes ${at()}`);
    const v = s.slice(i + 1, end);
    if (v.includes('\n')) throw bad(source, `expected ${what} in quotes ${at()}`);
    i = end + 1;
    return v;
  };
  const eat = (lit: string, what: string) => {
    spaces();
    if (!s.startsWith(lit, i)) throw bad(source, `expected ${what} ${at()}`);
    i += lit.length;
  };
  const item = () => {
    eat('\n', 'a new line');
    spaces();
    eat('-', '" - "');
  };
  for (;;) {
    // (blank lines between blocks and at the end)
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    const controller = quoted('a controller name');
    eat(':', '":" after the controller name');
    item();
    eat('"strategy":', '"strategy":');
    const strategy = quoted('the strategy');
    if (strategy !== 'merge' && strategy !== 'replace') throw bad(source, `unknown strategy "${strategy}" for controller ${controller} (merge or replace)`);
    item();
    eat('"properties":', '"properties":');
    eat('[', '"["');
    const properties: string[] = [];
    spaces();
    if (s[i] === ']') i++;
    else {
      for (;;) {
        properties.push(quoted('a property name'));
        spaces();
        if (s[i] === ',') {
          i++;
          continue;
        }
        eat(']', '"]" or ","');
        break;
      }
    }
    spaces();
    if (i < s.length && s[i] !== '\n') throw bad(source, `expected the end of the line ${at()}`);
    out.push({ controller, strategy, properties });
  }
  return out;
}

/** The lists per controller: the built-in ones, then each description's blocks in order. */
export function controllerProps(...texts: { text: string; source: string }[]): Record<string, readonly string[]> {
  const props: Record<string, string[]> = Object.fromEntries(Object.entries(BUILTIN_PROPS).map(([k, v]) => [k, [...v]]));
  for (const t of texts) {
    for (const b of parseCgroupProps(t.text, t.source)) {
      props[b.controller] = b.strategy === 'merge' ? [...(props[b.controller] ?? []), ...b.properties] : [...b.properties];
    }
  }
  return props;
}
