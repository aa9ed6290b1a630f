import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeImageFile } from '@crtools/images';
import { readFds, UNMAPPED_ID } from '@crtools/procfs';
import { FileTable } from '../../dump/table.js';
import { FilePlanTable } from '../../plan/table.js';
import { memfdName } from './dump.js';
import { SEAL } from './facts.js';

describe('memfd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-memfd-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the name memfd.img keeps is what follows /memfd: in the link, without " (deleted)"', () => {
    expect(memfdName('/memfd:crtools data (deleted)')).toBe('crtools data');
    expect(memfdName('/memfd: (deleted)')).toBe('');
    expect(memfdName('/memfd:x')).toBeUndefined();
    expect(memfdName('/tmp/memfd:x (deleted)')).toBeUndefined();
  });

  it('two descriptors on one open memfd and one on another open file of it: one inode with its seals, two MEMFD files; planned again', async () => {
    // fd 3: the memfd (position 5, sealed against growing); fd 4: a dup of it; fd 5: reopened O_RDONLY
    const prog = [
      'import fcntl, os, sys, time',
      'fd = os.memfd_create("unit memfd", os.MFD_ALLOW_SEALING)',
      'os.write(fd, b"0123456789")',
      'os.lseek(fd, 5, 0)',
      'fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW)',
      'os.dup2(fd, 3); os.dup2(fd, 4); os.dup2(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY), 5)',
      'sys.stdout.write("ready\\n"); sys.stdout.flush()',
      'time.sleep(30)',
    ].join('\n');
    const child = spawn('python3', ['-c', prog], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const table = new FileTable();
      const recs = readFds(child.pid!).filter((r) => r.fd >= 3 && r.fd <= 5).sort((a, b) => a.fd - b.fd);
      const fdinfo = recs.map((r) => table.fd(child.pid!, r)!);
      expect(fdinfo.map((e) => e.type)).toEqual(['MEMFD', 'MEMFD', 'MEMFD']);
      expect(fdinfo[0]!.id).toBe(fdinfo[1]!.id);
      expect(fdinfo[2]!.id).not.toBe(fdinfo[0]!.id);
      const images = table.images();
      const inodes = images.find((i) => i.file === 'memfd.img')!.entries;
      expect(inodes).toHaveLength(1);
      expect(inodes[0]).toMatchObject({ name: 'unit memfd', size: 10n, seals: SEAL.GROW, inode_id: 1n });
      const pending = table.takePendingShmem();
      expect(pending).toHaveLength(1);
      const out = join(dir, 'images');
      mkdirSync(out);
      for (const im of images) await writeImageFile(join(out, im.file), { magic: im.magic, entries: im.entries });
      const plans = await FilePlanTable.load(out);
      const [rw, ro] = [fdinfo[0]!, fdinfo[2]!].map((e) => plans.files[plans.index(Number(e.id), 'fd', child.pid!)]!);
      expect(rw).toMatchObject({ kind: 'memfd', inodeId: 1, pos: 5n });
      expect((rw as { flags: number }).flags & 3).toBe(2);
      expect(ro).toMatchObject({ kind: 'memfd', inodeId: 1, pos: 0n });
      expect((ro as { flags: number }).flags & 3).toBe(0);
      expect(plans.memfd.inode(1, 'test').name).toBe('unit memfd');
    } finally {
      process.kill(child.pid!, 'SIGKILL');
    }
  });

  it('in a tree with a user namespace of its own the owner is written as the ids inside it (as CRIU); an owner it does not map is refused by name', async () => {
    const prog = 'import os, sys, time\nfd = os.memfd_create("owned", 0)\nos.dup2(fd, 3)\nsys.stdout.write("ready\\n"); sys.stdout.flush()\ntime.sleep(30)';
    const child = spawn('python3', ['-c', prog], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const rec = readFds(child.pid!).find((r) => r.fd === 3)!;
      const tree = (shift: number | undefined) => ({
        tasks: new Set([child.pid!]), groups: new Set<number>(),
        uidInside: (id: number) => (shift === undefined ? UNMAPPED_ID : id + shift), gidInside: (id: number) => (shift === undefined ? UNMAPPED_ID : id + shift),
      });
      const mapped = new FileTable({ tree: tree(1000) });
      mapped.fd(child.pid!, rec);
      const inode = mapped.images().find((i) => i.file === 'memfd.img')!.entries[0]!;
      expect(inode).toMatchObject({ name: 'owned', uid: process.getuid!() + 1000, gid: process.getgid!() + 1000 });
      const unmapped = new FileTable({ tree: tree(undefined) });
      expect(() => unmapped.fd(child.pid!, rec)).toThrow(new RegExp(`task ${child.pid} fd 3 .*its owner \\(uid ${process.getuid!()}\\) is not mapped in the tree's user namespace`));
    } finally {
      process.kill(child.pid!, 'SIGKILL');
    }
  });
});
