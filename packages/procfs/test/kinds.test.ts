import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError, runProcfs, type ProcfsRunOptions } from './lib.js';

/** A fake procfs tree: /ROOT/77 built from golden captures, so every KIND runs without a live process. */
const golden = join(import.meta.dirname, 'golden');
const root = mkdtempSync(join(tmpdir(), 'procfs-kinds-'));
const p = join(root, '77');
mkdirSync(join(p, 'fdinfo'), { recursive: true });
mkdirSync(join(p, 'fd'));
mkdirSync(join(p, 'ns'));
mkdirSync(join(p, 'task', '77'), { recursive: true });
mkdirSync(join(p, 'task', '78'), { recursive: true });
const copy = (from: string, to: string) => cpSync(join(golden, from), join(p, to));
copy('zoo.maps.txt', 'maps');
copy('zoo.smaps.txt', 'smaps');
copy('zoo.status.txt', 'status');
copy('zoo.stat.txt', 'stat');
copy('zoo.limits.txt', 'limits');
copy('zoo.timers.txt', 'timers');
copy('zoo.auxv.bin', 'auxv');
copy('zoo.cgroup.txt', 'cgroup');
copy('escaped.mountinfo.txt', 'mountinfo');
copy('args.cmdline.bin', 'cmdline');
copy('args.cmdline.bin', 'environ');
for (const t of ['77', '78']) {
  copy('zoo.status.txt', `task/${t}/status`);
  copy('zoo.stat.txt', `task/${t}/stat`);
}
writeFileSync(join(p, 'task', '77', 'children'), '100 101 ');
writeFileSync(join(p, 'task', '78', 'children'), '101 102');
copy('eventfd.fdinfo.txt', 'fdinfo/4');
copy('epoll.fdinfo.txt', 'fdinfo/5');
symlinkSync('anon_inode:[eventfd]', join(p, 'fd', '4'));
symlinkSync('anon_inode:[eventpoll]', join(p, 'fd', '5'));
symlinkSync('net:[4026531833]', join(p, 'ns', 'net'));
symlinkSync('pid:[4026531836]', join(p, 'ns', 'pid'));
writeFileSync(join(p, 'timerslack_ns'), '50000\n');
writeFileSync(join(p, 'loginuid'), '4294967295');
writeFileSync(join(p, 'oom_score_adj'), '-17\n');
writeFileSync(join(p, 'personality'), '00400000\n');
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(kind: string, opts: ProcfsRunOptions = {}) {
  const out: string[] = [];
  const code = runProcfs(kind, 77, (s) => out.push(s), { procRoot: root, ...opts });
  const text = out.join('');
  return { code, text, lines: text.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

describe('every KIND through runProcfs on a fake procfs', () => {
  it('maps/smaps: one record per area; raw keeps text', () => {
    const m = run('maps');
    expect(m.code).toBe(0);
    expect(m.lines).toHaveLength(43);
    expect(m.lines.find((x) => x.name === '[vvar_vclock]').kind).toBe('vvar');
    expect(run('smaps').lines).toHaveLength(43);
    expect(run('maps', { raw: true }).lines[0]).toEqual({ start: '55c243e43000', end: '55c243e44000', perms: 'r--p', offset: '00000000', dev: 'fe:00', inode: '2146386', pathname: '/tmp/e-work/zoo' });
    expect(run('smaps', { raw: true }).lines[0].Rss).toBe('4 kB');
  });
  it('aggregates are one JSON document', () => {
    for (const k of ['status', 'stat', 'children', 'cmdline', 'environ', 'timerslack_ns', 'loginuid', 'oom_score_adj', 'personality', 'sched']) {
      const r = run(k);
      expect(r.code, k).toBe(0);
      expect(r.text.trimEnd().split('\n'), k).toHaveLength(1);
    }
    expect(run('children').lines[0]).toEqual([100, 101, 102]);
    expect(run('children', { raw: true }).lines[0]).toBe('100 101 101 102');
    expect(run('oom_score_adj').lines[0]).toBe(-17);
    expect(run('personality').lines[0]).toBe(0x400000);
    expect(run('timerslack_ns').lines[0]).toBe('0xc350');
    expect(run('timerslack_ns', { raw: true }).lines[0]).toBe('50000');
    expect(run('cmdline').lines[0]).toEqual(['a', 'b c', '', 'd']);
    expect(run('sched').lines[0]).toEqual({ policy: 0, policyName: 'SCHED_OTHER', rtPriority: 0, nice: 0 });
  });
  it('streams: tasks, fds, mountinfo, cgroup, ns, auxv, limits, timers', () => {
    expect(run('tasks').lines.map((t) => t.tid)).toEqual([77, 78]);
    const fds = run('fds').lines;
    expect(fds.map((f) => [f.fd, f.target])).toEqual([[4, 'anon_inode:[eventfd]'], [5, 'anon_inode:[eventpoll]']]);
    expect(fds[1].epoll.tfds[0].data).toBe('0x1122334455667788');
    expect(run('fds', { raw: true }).lines[0].fdinfo).toContainEqual(['eventfd-count', '5']);
    expect(run('mountinfo').lines[1].mountPoint).toBe('/mnt/a b\ttab');
    expect(run('cgroup').lines).toHaveLength(10);
    expect(run('ns').lines).toEqual([{ name: 'net', type: 'net', ino: '0xeffffff9' }, { name: 'pid', type: 'pid', ino: '0xeffffffc' }]);
    expect(run('auxv').lines.at(-1).name).toBe('AT_NULL');
    expect(run('limits').lines.find((l) => l.resource === 'RLIMIT_STACK').soft).toBe('0x800000');
    expect(run('timers').lines[0]).toMatchObject({ signo: 12, sigval: '0x1234' });
  });
  it('usage errors and a missing process', () => {
    for (const [k, pid] of [['bogus', 77], ['maps', 0], ['maps', -3], ['__proto__', 77]] as const) {
      try {
        runProcfs(k, pid, () => {}, { procRoot: root });
        expect.unreachable();
      } catch (e) {
        expect(isCrtoolsError(e) && e.exitCode === 2).toBe(true);
      }
    }
    try {
      runProcfs('maps', 12345, () => {}, { procRoot: root });
      expect.unreachable();
    } catch (e) {
      expect(isCrtoolsError(e) && e.code === 'NO_SUCH_PROCESS').toBe(true);
    }
  });
});
