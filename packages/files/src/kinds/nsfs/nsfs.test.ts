import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { writeImageFile } from '@crtools/images';
import type { FdRecord } from '@crtools/procfs';
import { NsFiles, nsTarget } from './dump.js';
import { NsPlans } from './plan.js';

const rec = (target: string): FdRecord => ({ fd: 5, target, pos: 0n, flags: 0, mntId: 0, ino: 1n } as FdRecord);

describe('nsfs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-nsfs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a target names a namespace by kind and inode; other files are not namespace files', () => {
    expect(nsTarget('net:[4026531833]')).toEqual({ kind: 'net', ino: 4026531833n });
    expect(nsTarget(readlinkSync('/proc/self/ns/uts'))?.kind).toBe('uts');
    expect(nsTarget('pipe:[123]')).toBeUndefined();
    expect(nsTarget('/proc/1/ns/net')).toBeUndefined();
  });

  it('dumped as an NS entry with the namespace id and its clone flag; a namespace no task lives in is refused by name', () => {
    const kind = new NsFiles(() => (k, ino) => (k === 'net' && ino === 77n ? 2 : undefined));
    const c = kind.claim(9, rec('net:[77]'), 0);
    expect(c!.entry(4, 0)).toEqual({ type: 'NS', id: 4, nsf: { id: 4, ns_id: 2, ns_cflag: 0x40000000, flags: 0 } });
    expect(kind.claim(9, rec('anon_inode:[eventfd]'), 0)).toBeUndefined();
    let err: unknown;
    try {
      kind.claim(9, rec('uts:[78]'), 0);
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.code).toBe('UNSUPPORTED_FILE');
    expect((err as Error).message).toBe('task 9 fd 5 (uts:[78]): a file of uts namespace 78, in which no task of the dumped tree lives, is not supported (the restore opens a namespace\'s file through a task living in it)');
  });

  it('planned as a late file: /proc/PID/ns/X of the first task living in the namespace; a namespace none lives in is refused', async () => {
    await writeImageFile(join(dir, 'pstree.img'), { magic: 'PSTREE', entries: [{ pid: 40, ppid: 0, pgid: 40, sid: 40 }, { pid: 41, ppid: 40, pgid: 40, sid: 40 }] });
    const ids = (net: number) => ({ vm_id: 1, files_id: 1, fs_id: 1, sighand_id: 1, pid_ns_id: 1, net_ns_id: net, ipc_ns_id: 3, uts_ns_id: 4, mnt_ns_id: 6, user_ns_id: 7, cgroup_ns_id: 8, time_ns_id: 5 });
    await writeImageFile(join(dir, 'ids-40.img'), { magic: 'IDS', entries: [ids(2)] });
    await writeImageFile(join(dir, 'ids-41.img'), { magic: 'IDS', entries: [ids(9)] });
    const plans = new NsPlans();
    await plans.load(dir, new Map([[1, { id: 1, type: 'NS', nsf: { id: 1, ns_id: 9, ns_cflag: 0x40000000, flags: 0 } }]]));
    expect(plans.plan({ id: 1, ns_id: 9, ns_cflag: 0x40000000, flags: 0 }, { what: 'pid 40 fd 5' })).toEqual({ kind: 'reg', path: '/proc/41/ns/net', flags: 0, pos: 0n, late: true });
    expect(plans.plan({ id: 2, ns_id: 4, ns_cflag: 0x04000000, flags: 0o2000 }, { what: 'pid 40 fd 6' })).toEqual({ kind: 'reg', path: '/proc/40/ns/uts', flags: 0o2000, pos: 0n, late: true });
    expect(() => plans.plan({ id: 3, ns_id: 12, ns_cflag: 0x40000000, flags: 0 }, { what: 'pid 40 fd 7' })).toThrow(/pid 40 fd 7: a file of namespace 12, in which no live task of the checkpoint lives/);
    expect(() => plans.plan({ id: 4, ns_id: 4, ns_cflag: 0x40000000, flags: 0 }, { what: 'pid 40 fd 8' })).toThrow(/clone flag 0x40000000, but that namespace is a uts one/);
  });
});
