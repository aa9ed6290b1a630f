import { describe, expect, it } from 'vitest';
import { cgnsPrefix, membersOf, propertyValue } from './cgroups.js';

describe('cgroup properties as CRIU 4.2 saves them', () => {
  it('a trailing newline dropped, LLONG_MAX (or more) as -1, procs and tasks empty, oom_control as its oom_kill_disable', () => {
    expect(propertyValue('pids.max', 'max\n')).toBe('max');
    expect(propertyValue('cpu.cfs_quota_us', '-1\n')).toBe('-1');
    expect(propertyValue('memory.limit_in_bytes', '9223372036854771712\n')).toBe('9223372036854771712');
    expect(propertyValue('memory.limit_in_bytes', '9223372036854775807\n')).toBe('-1');
    expect(propertyValue('memory.soft_limit_in_bytes', '18446744073709551615\n')).toBe('-1');
    expect(propertyValue('cgroup.procs', '12\n13\n')).toBe('');
    expect(propertyValue('tasks', '12\n')).toBe('');
    expect(propertyValue('devices.list', 'b *:* m\nc 1:3 rwm\n')).toBe('b *:* m\nc 1:3 rwm');
    expect(propertyValue('memory.oom_control', 'oom_kill_disable 1\nunder_oom 0\noom_kill 0\n')).toBe('1');
    expect(() => propertyValue('memory.oom_control', 'under_oom 0\n')).toThrow(/oom_kill_disable/);
    expect(propertyValue('cpuset.cpus', `${'0,'.repeat(600)}1\n`)).toHaveLength(1023);
  });

  it("a task's memberships: one per hierarchy, v2 named '', sorted by name", () => {
    const m = membersOf(process.pid);
    expect(m.map((x) => x.name)).toEqual([...m.map((x) => x.name)].sort());
    expect(m.every((x) => x.path.startsWith('/'))).toBe(true);
    expect(new Set(m.map((x) => x.name)).size).toBe(m.length);
  });

  it('cgns_prefix: the part of the path above the cgroup namespace\'s root, as CRIU 4.2 computes it', () => {
    expect(cgnsPrefix('/foo/bar', '/bar')).toBe(4); // rooted at /foo
    expect(cgnsPrefix('/foo/bar', '/')).toBe(8); // at the namespace's root: the whole path
    expect(cgnsPrefix('/a/b/c', '/b/c')).toBe(2);
    expect(cgnsPrefix('/', '/')).toBeUndefined(); // the hierarchy's root: no prefix
    expect(cgnsPrefix('/x', '/x')).toBeUndefined();
    expect(cgnsPrefix('/foo', '/..')).toBeNull(); // above the namespace's root
    expect(cgnsPrefix('/foo', '/../bar')).toBeNull();
    expect(cgnsPrefix('/foobar', '/bar')).toBeNull(); // not a suffix at a directory
  });
});
