import { describe, expect, it } from 'vitest';
import { BUILTIN_PROPS, controllerProps, parseCgroupProps } from './cgroup-props.js';

describe('--cgroup-props as CRIU 4.2 reads it', () => {
  it('blocks of a controller, its strategy and its properties (CRIU\'s own form, spaces as it allows them)', () => {
    const text = '"cpu":\n - "strategy": "replace"\n - "properties": ["cpu.shares", "cpu.cfs_period_us"]\n"memory":\n - "strategy": "merge"\n - "properties": [ "memory.high" ]\n"freezer":\n - "strategy": "replace"\n - "properties": [ ]\n';
    expect(parseCgroupProps(text)).toEqual([
      { controller: 'cpu', strategy: 'replace', properties: ['cpu.shares', 'cpu.cfs_period_us'] },
      { controller: 'memory', strategy: 'merge', properties: ['memory.high'] },
      { controller: 'freezer', strategy: 'replace', properties: [] },
    ]);
  });

  it('replace puts the list in place, merge adds to the end, a new controller gets its list; the built-in ones stay otherwise', () => {
    const p = controllerProps(
      { text: '"cpu":\n - "strategy": "replace"\n - "properties": ["cpu.shares"]\n', source: '--cgroup-props' },
      { text: '"pids":\n - "strategy": "merge"\n - "properties": ["pids.extra"]\n"hugetlb":\n - "strategy": "merge"\n - "properties": ["hugetlb.2MB.limit_in_bytes"]', source: '--cgroup-props-file f' },
    );
    expect(p['cpu']).toEqual(['cpu.shares']);
    expect(p['pids']).toEqual(['pids.max', 'pids.extra']);
    expect(p['hugetlb']).toEqual(['hugetlb.2MB.limit_in_bytes']);
    expect(p['memory']).toEqual(BUILTIN_PROPS['memory']);
  });

  it('what CRIU would not take is a usage error naming the option and where', () => {
    expect(() => parseCgroupProps('cpu:\n')).toThrow(/^--cgroup-props: expected a controller name in quotes at offset 0$/);
    try {
      parseCgroupProps('cpu:\n');
    } catch (e) {
      expect((e as { exitCode?: number; code?: string }).code).toBe('USAGE');
    }
    expect(() => parseCgroupProps('"cpu":\n - "strategy": "both"\n - "properties": []\n')).toThrow(/unknown strategy "both" for controller cpu/);
    expect(() => parseCgroupProps('"cpu":\n - "strategy": "merge"\n - "properties": ["a" "b"]\n', '--cgroup-props-file x')).toThrow(/^--cgroup-props-file x: expected "\]" or ","/);
    expect(() => parseCgroupProps('"cpu": - "strategy": "merge"')).toThrow(/expected a new line/);
  });
});
