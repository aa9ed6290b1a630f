import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Refusals } from '@crtools/common';
import { writeImageFile } from '@crtools/images';
import { readFds, readMountinfo } from '@crtools/procfs';
import { FileTable } from '../../dump/table.js';
import { FilePlanTable } from '../../plan/table.js';

/**
 * A python child with an inotify instance watching `file` (IN_MODIFY) under watch 1; `hold`: it
 * holds the file open too. Resolves once it has unlinked the file (or, not holding it, once the
 * watch is on: the caller unlinks it).
 */
async function watcher(file: string, hold: boolean): Promise<ChildProcess> {
  const py = [
    'import ctypes, os, sys, time',
    'l = ctypes.CDLL(None, use_errno=True)',
    'fd = l.inotify_init1(0)',
    hold ? `f = os.open(${JSON.stringify(file)}, os.O_RDWR)` : '',
    `assert l.inotify_add_watch(fd, ${JSON.stringify(file)}.encode(), 2) == 1`,
    hold ? `os.unlink(${JSON.stringify(file)})` : '',
    'print("ready", flush=True)',
    'time.sleep(30)',
  ].join('\n');
  const child = spawn('/usr/bin/python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`watcher exited (${c})`)));
  });
  return child;
}

describe('inotify: a watch on a file unlinked since', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-inotify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('held by the task: written by its handle alone, planned on the ghost of that device and inode', async () => {
    const file = join(dir, 'held');
    writeFileSync(file, 'abc');
    const child = await watcher(file, true);
    try {
      const table = new FileTable();
      const recs = readFds(child.pid!).filter((r) => r.fd > 2);
      const ids = recs.map((r) => ({ target: r.target, id: Number(table.fd(child.pid!, r)!.id) }));
      table.finish();
      const ify = table.files.find((f) => f.type === 'INOTIFY')!.ify as { wd: { f_handle: Record<string, unknown> }[] };
      expect(ify.wd).toHaveLength(1);
      expect(ify.wd[0]!.f_handle.path).toBeUndefined();
      const images = join(dir, 'images-held');
      mkdirSync(images);
      for (const im of table.images()) await writeImageFile(join(images, im.file), { magic: im.magic, entries: im.entries });
      const plans = await FilePlanTable.load(images);
      const reg = ids.find((x) => x.target === `${file} (deleted)`)!;
      expect(plans.files[plans.index(reg.id, 'fd', child.pid!)]).toMatchObject({ kind: 'reg', path: file, ghost: 0 });
      const watch = ids.find((x) => x.target === 'anon_inode:inotify')!;
      expect(plans.files[plans.index(watch.id, 'fd', child.pid!)]).toMatchObject({ kind: 'inotify', watches: [{ wd: 1, mask: 2, path: file, ghost: 0 }] });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('held by no task of the tree (another process holds it): refused by name once every file is in', async () => {
    const file = join(dir, 'outside');
    writeFileSync(file, 'abc');
    const held = openSync(file, 'r');
    const child = await watcher(file, false);
    try {
      rmSync(file);
      const refusals = new Refusals(true);
      const table = new FileTable({ refusals });
      for (const r of readFds(child.pid!).filter((x) => x.fd > 2)) table.fd(child.pid!, r);
      expect(refusals.found).toEqual([]);
      table.finish();
      expect(refusals.found.map((e) => [e.code, e.exitCode, e.message])).toEqual([[
        'UNSUPPORTED_FILE', 4,
        `task ${child.pid} fd 3 (anon_inode:inotify): watch 1: a watch on ${file}, unlinked since, whose inode no task of the tree holds open or mapped (nothing to make it again from), which is not supported`,
      ]]);
    } finally {
      child.kill('SIGKILL');
      closeSync(held);
    }
  });
});

describe('inotify: a watch on a file only a nested mount namespace shows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-inotify-ns-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('written with its path there and that mount\'s id (as CRIU 4.2), planned late through a task living there', async () => {
    // a tmpfs mounted at DIR in a mount namespace of the watcher's own (this one shows none)
    const py = [
      'import ctypes, sys',
      'l = ctypes.CDLL(None, use_errno=True)',
      'fd = l.inotify_init1(0)',
      `open(${JSON.stringify(join(dir, 'f'))}, "w").close()`,
      `assert l.inotify_add_watch(fd, ${JSON.stringify(join(dir, 'f'))}.encode(), 2) == 1`,
      'print("ready", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs files-inotify-ns ${dir} && exec /usr/bin/python3 -c '${py}'`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (c) => reject(new Error(`watcher exited (${c})`)));
      });
      const tmpfs = readMountinfo(child.pid!).find((m) => m.mountPoint === dir)!;
      expect(readMountinfo(process.pid).some((m) => m.devMajor === tmpfs.devMajor && m.devMinor === tmpfs.devMinor)).toBe(false);
      const table = new FileTable({
        nestedMountsOf: (sdev) => (sdev === ((tmpfs.devMajor << 20) | tmpfs.devMinor) ? [{ dir: `/proc/${child.pid}/root${dir}`, mntId: tmpfs.mntId }] : []),
      });
      const rec = readFds(child.pid!).find((r) => r.target === 'anon_inode:inotify')!;
      const id = Number(table.fd(child.pid!, rec)!.id);
      table.finish();
      const ify = table.files.find((f) => f.type === 'INOTIFY')!.ify as { wd: { f_handle: Record<string, unknown> }[] };
      expect(ify.wd[0]!.f_handle).toMatchObject({ path: join(dir, 'f'), mnt_id: tmpfs.mntId });
      const images = mkdtempSync(join(tmpdir(), 'files-inotify-ns-img-'));
      for (const im of table.images()) await writeImageFile(join(images, im.file), { magic: im.magic, entries: im.entries });
      const plans = await FilePlanTable.load(images, { nestedMounts: new Map([[tmpfs.mntId, 77]]) });
      expect(plans.files[plans.index(id, 'fd', child.pid!)]).toMatchObject({
        kind: 'inotify', late: true, watches: [{ wd: 1, mask: 2, path: `/proc/77/root${join(dir, 'f')}`, inNs: { pid: 77, name: join(dir, 'f') } }],
      });
      rmSync(images, { recursive: true, force: true });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
