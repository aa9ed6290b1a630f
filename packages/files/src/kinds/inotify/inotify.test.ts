import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Refusals } from '@crtools/common';
import { writeImageFile } from '@crtools/images';
import { readFds } from '@crtools/procfs';
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
