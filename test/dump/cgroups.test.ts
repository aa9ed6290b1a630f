/**
 * cgroup membership (crtools issue 17): a workload moved into cgroups of its own, in every
 * hierarchy criu sees (the v1 controllers and the v2 unified one: this machine kind is hybrid),
 * is dumped: each thread's css set is named in its core (thread_core.cg_set) and cgroup.img
 * holds the set with its paths, as CRIU 4.2 writes it (set 1 being criu's, inventory's
 * root_cg_set); the directories with the properties CRIU saves (its default mode, soft; not with
 * --manage-cgroups=ignore). A tree in
 * criu's own cgroups writes no cgroup.img. CRIU 4.2 (env CRIU or /tmp/criu-4.2/criu/criu)
 * restores the dump into the same cgroups; skipped, saying so, where it is not. The cgroups
 * made here are removed (rmdir) at the end, the workloads killed by pid.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, askVerdict, criu, critDecode, killTree, ourCritDecode, startWorkload, tmp, waitReaped } from './helpers.js';
import { CRIU } from '../restore/criu-ref.js';
import { spawnSync } from 'node:child_process';

/** criu's (our) hierarchies as /proc/self/cgroup names them, with the directory each is mounted on. */
function hierarchies(): { name: string; path: string; mount: string }[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((l) => {
    const [pre, post] = l.split(' - ');
    const f = pre!.split(' ');
    const [fstype, , sopts] = post!.split(' ');
    return { root: f[3]!, point: f[4]!, fstype: fstype!, sopts: sopts!.split(',') };
  });
  return readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').map((l) => {
    const [, ctl, p] = /^(?:\d+):([^:]*):(.*)$/.exec(l)!;
    const m = ctl === ''
      ? mounts.find((x) => x.fstype === 'cgroup2' && x.root === '/')
      : mounts.find((x) => x.fstype === 'cgroup' && x.root === '/' && ctl!.split(',').every((c) => x.sopts.includes(c)));
    return { name: ctl!, path: p!, mount: m?.point ?? '' };
  });
}

const made: string[] = [];
const pids: number[] = [];
const name = `crtools-cg-${process.pid}`;

/** A cgroup `name`-`which` under criu's own in every hierarchy; pid moved into it. */
function moveIntoOwn(pid: number, which: string): Record<string, string> {
  const where: Record<string, string> = {};
  for (const h of hierarchies()) {
    // (a hierarchy no mount shows, e.g. one zdtm left: the task stays where it is there)
    if (!h.mount) {
      where[h.name] = cgroupsOf(pid)[h.name]!;
      continue;
    }
    const rel = path.posix.join(h.path, `${name}-${which}`);
    const dir = path.join(h.mount, rel);
    if (!existsSync(dir)) {
      mkdirSync(dir);
      made.push(dir);
    }
    // (cpuset: a new v1 cpuset has no cpus nor mems until given its parent's)
    if (h.name === 'cpuset') for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(path.join(dir, f), readFileSync(path.join(path.dirname(dir), f), 'utf8'));
    writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    where[h.name] = rel;
  }
  return where;
}

/** /proc/PID/cgroup as hierarchy name → path. */
function cgroupsOf(pid: number): Record<string, string> {
  return Object.fromEntries(readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => {
    const [, ctl, p] = /^(?:\d+):([^:]*):(.*)$/.exec(l)!;
    return [ctl!, p!];
  }));
}

afterAll(() => {
  for (const pid of pids) {
    if (alive(pid)) killTree(pid);
    waitReaped(pid); // (out of its cgroups: they can be removed)
  }
  for (const d of made.reverse()) {
    try {
      rmdirSync(d);
    } catch {
      /* a task still in it: reported by the test that left it */
    }
  }
});

// (a hierarchy no mount shows is read by the dump through its own mount, but cannot be entered here)
const hasHierarchies = hierarchies().some((h) => h.mount);

describe.skipIf(!hasHierarchies)(`cgroup membership${hasHierarchies ? '' : ' (skipped: no hierarchy of ours is mounted where we can see it)'}`, () => {
  it('a tree in criu\'s own cgroups: no cgroup.img, every thread in set 1 (criu\'s, root_cg_set)', () => {
    const w = startWorkload('sleeper', []);
    pids.push(w.pid);
    const dir = tmp('cg-none');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '--manage-cgroups']);
    expect(d.code, d.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'cgroup.img'))).toBe(false);
    expect(readFileSync(path.join(dir, 'dump.log'), 'utf8')).toContain("cg: all tasks in criu's cgroups, nothing to dump");
    expect(critDecode(path.join(dir, 'inventory.img')).entries[0].root_cg_set).toBe(1);
    expect(ourCritDecode(path.join(dir, `core-${w.pid}.img`)).entries[0].thread_core.cg_set).toBe(1);
  });

  it('--cgroup-props, --cgroup-props-file (replace, merge) and --cgroup-dump-controller change what is saved, as criu.8 says; a text CRIU would not take: exit 1, the tree untouched', () => {
    const w = startWorkload('sleeper', []);
    pids.push(w.pid);
    const where = moveIntoOwn(w.pid, 'props');
    const pidsH = hierarchies().find((h) => h.name === 'pids' && h.mount);
    const cpuH = hierarchies().find((h) => h.name.split(',').includes('cpu') && h.mount);
    if (!pidsH || !cpuH) return expect.fail('this test needs the v1 pids and cpu hierarchies mounted');
    const dir = tmp('cg-props');
    const file = path.join(dir, 'props.yaml');
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, '"cpu":\n - "strategy": "merge"\n - "properties": ["cpu.idle"]\n');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--manage-cgroups', '--leave-running',
      '--cgroup-props', '"pids":\n - "strategy": "replace"\n - "properties": []\n', '--cgroup-props-file', file]);
    expect(d.code, d.stderr).toBe(0);
    const cg = critDecode(path.join(dir, 'cgroup.img')).entries[0];
    const propsOf = (h: string) => cg.controllers.find((c: any) => c.cnames.join(',') === h).dirs[0].properties.map((p: any) => p.name);
    // pids: replaced by nothing (the v1 globals stay); cpu: its own list with cpu.idle at the end (where the kernel has it)
    expect(propsOf('pids')).toEqual(['cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks']);
    const cpu = propsOf(cpuH.name);
    expect(cpu).toContain('cpu.shares');
    if (existsSync(path.join(cpuH.mount, where[cpuH.name]!, 'cpu.idle'))) expect(cpu[cpu.indexOf('notify_on_release') - 2]).toBe('cpu.idle');
    // only the pids hierarchy's directories
    const only = tmp('cg-only');
    expect(criu(['dump', '-t', String(w.pid), '-D', only, '--manage-cgroups', '--leave-running', '--cgroup-dump-controller', 'pids']).code).toBe(0);
    const cg2 = critDecode(path.join(only, 'cgroup.img')).entries[0];
    expect(cg2.controllers.filter((c: any) => (c.dirs ?? []).length).map((c: any) => c.cnames.join(','))).toEqual(['pids']);
    // the same membership (but a hierarchy gone between the two dumps: the named ones other tests
    // leave unmounted are destroyed by the kernel whenever their last reference goes)
    const inBoth = (a: { name: string }[], b: { name: string }[]) => a.filter((c) => b.some((d) => d.name === c.name));
    expect(inBoth(cg2.sets[0].ctls, cg.sets[0].ctls)).toEqual(inBoth(cg.sets[0].ctls, cg2.sets[0].ctls));
    expect(inBoth(cg.sets[0].ctls, cg2.sets[0].ctls).map((c) => c.name)).toEqual(expect.arrayContaining(['pids', cpuH.name]));
    const bad = criu(['dump', '-t', String(w.pid), '-D', tmp('cg-badprops'), '--cgroup-props', '"pids": "merge"']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^criu: --cgroup-props: expected a new line at offset \d+\n$/);
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
  });

  it('a tree in cgroups of its own (v1 controllers and v2): its css set and the directories as CRIU 4.2 writes them (its default mode soft, given or not; ignore: the memberships only)', () => {
    const w = startWorkload('sleeper', []);
    pids.push(w.pid);
    const where = moveIntoOwn(w.pid, 'own');
    expect(cgroupsOf(w.pid)).toEqual(where);
    const dir = tmp('cg-own');
    const freezer = hierarchies().find((h) => h.name === 'freezer');
    const freeze = freezer ? ['--freeze-cgroup', path.join(freezer.mount, where['freezer']!)] : [];
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '--manage-cgroups', '--leave-running', ...freeze]);
    expect(d.code, d.stderr).toBe(0);
    const cg = critDecode(path.join(dir, 'cgroup.img')).entries[0];
    // one set besides criu's: id 2, each hierarchy's path (sorted by name, v2's named '')
    expect(cg.sets).toEqual([{ id: 2, ctls: Object.keys(where).sort().map((n) => ({ name: n, path: where[n] })) }]);
    expect(critDecode(path.join(dir, 'inventory.img')).entries[0].root_cg_set).toBe(1);
    expect(ourCritDecode(path.join(dir, `core-${w.pid}.img`)).entries[0].thread_core.cg_set).toBe(2);
    // every hierarchy's directory, its properties with values and owners as the files say
    const byName = new Map<string, any>(cg.controllers.map((c: any) => [c.cnames.join(','), c]));
    for (const h of hierarchies().filter((x) => x.mount)) {
      const c = byName.get(h.name);
      expect(c, h.name).toBeDefined();
      const head = c.dirs.find((x: any) => x.dir_name === where[h.name]!.replace(/^\//, ''));
      expect(head, `${h.name}: ${JSON.stringify(c.dirs.map((x: any) => x.dir_name))}`).toBeDefined();
      const props = new Map<string, any>(head.properties.map((p: any) => [p.name, p]));
      const fsDir = path.join(h.mount, where[h.name]!);
      if (h.name === '') {
        expect([...props.keys()]).toEqual(['cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth', 'cgroup.freeze', 'cgroup.type'].filter((p) => existsSync(path.join(fsDir, p))));
        expect(props.get('cgroup.type').value).toBe(readFileSync(path.join(fsDir, 'cgroup.type'), 'utf8').trim());
      } else {
        expect([...props.keys()].filter((p) => p !== 'freezer.state').slice(-4)).toEqual(['cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks']);
        expect(props.get('tasks').value).toBe('');
        expect(c.is_threaded ?? true).toBe(true);
      }
      if (h.name === 'pids') expect(props.get('pids.max').value).toBe(readFileSync(path.join(fsDir, 'pids.max'), 'utf8').trim());
      if (h.name === 'cpuset') expect(props.get('cpuset.cpus').value).toBe(readFileSync(path.join(fsDir, 'cpuset.cpus'), 'utf8').trim());
      if (h.name === 'memory') expect(props.get('memory.oom_control').value).toMatch(/^[01]$/);
      // --freeze-cgroup: the freezer's state before the dump, as CRIU keeps it
      if (h.name === 'freezer') expect(props.get('freezer.state')).toMatchObject({ value: 'THAWED', perms: { mode: 0o100644, uid: 0, gid: 0 } });
      expect(head.dir_perms).toMatchObject({ mode: 0o40755, uid: 0, gid: 0 });
    }
    expect(cgroupsOf(w.pid)).toEqual(where);
    expect(w.check()).toMatch(/^check ok/);

    // CRIU's default mode is soft, --manage-cgroups given or not: the same directories; ignore: the memberships only
    const dirsOf = (c: any) => Object.fromEntries(c.controllers.map((x: any) => [x.cnames.join(','), (x.dirs ?? []).map((y: any) => y.dir_name)]));
    const plain = tmp('cg-plain');
    expect(criu(['dump', '-t', String(w.pid), '-D', plain, '--leave-running']).code).toBe(0);
    expect(dirsOf(critDecode(path.join(plain, 'cgroup.img')).entries[0])).toEqual(dirsOf(cg));
    const ignore = tmp('cg-ignore');
    expect(criu(['dump', '-t', String(w.pid), '-D', ignore, '--leave-running', '--manage-cgroups=ignore']).code).toBe(0);
    const ign = critDecode(path.join(ignore, 'cgroup.img')).entries[0];
    expect(ign.sets).toEqual(cg.sets);
    expect(Object.values(dirsOf(ign)).flat()).toEqual([]);
    expect(w.check()).toMatch(/^check ok/);
  });

  it.skipIf(!hierarchies().some((h) => h.name === 'freezer'))('--freeze-cgroup: a cgroup frozen already, or holding a task outside the tree, is refused by name (exit 4), the tree untouched', () => {
    const w = startWorkload('sleeper', []);
    pids.push(w.pid);
    const where = moveIntoOwn(w.pid, 'frozen');
    const fdir = path.join(hierarchies().find((h) => h.name === 'freezer')!.mount, where['freezer']!);
    writeFileSync(path.join(fdir, 'freezer.state'), 'FROZEN');
    try {
      for (let i = 0; i < 100 && readFileSync(path.join(fdir, 'freezer.state'), 'utf8').trim() !== 'FROZEN'; i++) spawnSync('sleep', ['0.02']);
      const dir = tmp('cg-frozen');
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--manage-cgroups', '--freeze-cgroup', fdir]);
      expect(d).toMatchObject({ code: 4, stderr: `criu: --freeze-cgroup ${fdir}: the cgroup is FROZEN already (a paused container), which is not supported by crtools yet (crtools issue 17)\n` });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      writeFileSync(path.join(fdir, 'freezer.state'), 'THAWED');
    }
    // another task in it, not of the tree
    const other = startWorkload('sleeper', []);
    pids.push(other.pid);
    writeFileSync(path.join(fdir, 'cgroup.procs'), String(other.pid));
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('cg-stray'), '--manage-cgroups', '--freeze-cgroup', fdir]);
    expect(d).toMatchObject({ code: 4, stderr: `criu: --freeze-cgroup ${fdir}: task ${other.pid} in the cgroup is not of the dumped tree\n` });
    expect(w.check()).toMatch(/^check ok/);
    expect(other.check()).toMatch(/^check ok/);
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
  });

  it.skipIf(!CRIU)(`CRIU 4.2 restores the dump into the same cgroups${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('sleeper', []);
    pids.push(w.pid);
    const where = moveIntoOwn(w.pid, 'criu');
    const dir = tmp('cg-criu');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '--manage-cgroups']);
    expect(d.code, d.stderr).toBe(0);
    // (its pid free again: the restore takes it back)
    expect(waitReaped(w.pid)).toBe(true);
    const r = spawnSync(CRIU!, ['restore', '-D', dir, '-o', 'restore.log', '-v4', '--manage-cgroups', '-d'], { encoding: 'utf8', timeout: 60_000 });
    const log = existsSync(path.join(dir, 'restore.log')) ? readFileSync(path.join(dir, 'restore.log'), 'utf8') : '';
    expect(r.status, `${r.stderr}\n${log.split('\n').filter((l) => /Error|Warn/.test(l)).slice(-10).join('\n')}`).toBe(0);
    expect(alive(w.pid)).toBe(true);
    expect(cgroupsOf(w.pid)).toEqual(where);
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
    // the restored task is in the cgroups made here: listed in each
    for (const h of hierarchies().filter((x) => x.mount)) expect(readFileSync(path.join(h.mount, where[h.name]!, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(w.pid));
    expect(readdirSync(dir)).toContain('cgroup.img');
  });
});
