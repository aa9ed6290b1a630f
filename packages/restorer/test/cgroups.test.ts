/**
 * The properties a restore writes into a dumped cgroup directory, through a --cgroup-yard of plain
 * directories (no mount, no root): net_prio.ifpriomap one interface a write, priority 0 left out;
 * each property file's mode put back; a directory made is removed again by undo, kept after
 * release.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareCgroups } from '../src/cgroups.js';
import type { CgroupsPlan } from '../src/plan.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function yard(): string {
  const y = mkdtempSync(path.join(tmpdir(), 'crtools-cgunit-'));
  dirs.push(y);
  mkdirSync(path.join(y, 'net_prio'));
  return y;
}

const uid = process.getuid!();
const gid = process.getgid!();

function plan(props: CgroupsPlan['controllers'][0]['dirs'][0]['props']): CgroupsPlan {
  return {
    sets: [{ id: 2, ctls: [{ name: 'net_prio', path: '/a' }] }],
    controllers: [{ cnames: ['net_prio'], dirs: [{ name: 'a', props, perms: { mode: 0o40750, uid, gid }, children: [] }] }],
  };
}

describe('cgroup properties written through a yard', () => {
  it('ifpriomap: one interface a write, those of priority 0 left out; the file modes put back', () => {
    const y = yard();
    const a = path.join(y, 'net_prio/a');
    mkdirSync(a);
    const lines: string[] = [];
    // (a regular file keeps the last write: each write is checked as it comes, through the mode it leaves)
    writeFileSync(path.join(a, 'net_prio.ifpriomap'), '');
    writeFileSync(path.join(a, 'notify_on_release'), '0');
    writeFileSync(path.join(a, 'cgroup.procs'), '');
    const made = prepareCgroups(plan([
      { name: 'net_prio.ifpriomap', value: 'lo 0\neth0 5\nwlan9 0\nveth1 12', perms: { mode: 0o100644, uid, gid } },
      { name: 'notify_on_release', value: '1', perms: { mode: 0o100777, uid, gid } },
      { name: 'cgroup.procs', value: '', perms: { mode: 0o100606, uid, gid } },
    ]), 'full', { yard: y }, { error() {}, warn: (...m: unknown[]) => lines.push(m.join(' ')), info() {}, debug() {} });
    made.release();
    // the last line with a priority, alone
    expect(readFileSync(path.join(a, 'net_prio.ifpriomap'), 'utf8')).toBe('veth1 12');
    expect(readFileSync(path.join(a, 'notify_on_release'), 'utf8')).toBe('1');
    expect(statSync(path.join(a, 'notify_on_release')).mode & 0o7777).toBe(0o777);
    // a membership file: its mode, never a value
    expect(statSync(path.join(a, 'cgroup.procs')).mode & 0o7777).toBe(0o606);
    expect(readFileSync(path.join(a, 'cgroup.procs'), 'utf8')).toBe('');
    expect(statSync(a).mode & 0o7777).toBe(0o750);
    expect(lines).toEqual([]);
  });

  it('a directory made: removed by undo, kept once released', () => {
    const y = yard();
    const a = path.join(y, 'net_prio/a');
    const made = prepareCgroups(plan([]), 'soft', { yard: y });
    expect(statSync(a).mode & 0o7777).toBe(0o750);
    made.undo();
    made.release();
    expect(existsSync(a)).toBe(false);
    const again = prepareCgroups(plan([]), 'soft', { yard: y });
    again.release();
    again.undo();
    expect(existsSync(a)).toBe(true);
  });
});
