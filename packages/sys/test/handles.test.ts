import { spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileHandlePath } from '../src/index.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'crtools-sys-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The kernel's handle of a file, as an inotify watch on it shows it in fdinfo (what a dump reads). */
function handleOf(file: string): { sdev: number; type: number; handle: Buffer } {
  const script = [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'fd = libc.inotify_init1(0)',
    'libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x2)',
    "print(open('/proc/self/fdinfo/%d' % fd).read())",
  ].join('\n');
  const out = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' }).stdout;
  const m = /inotify wd:\S+ ino:\S+ sdev:([0-9a-f]+) mask:\S+ ignored_mask:\S+ fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+)/.exec(out);
  if (!m) throw new Error(`no inotify line in: ${out}`);
  return { sdev: parseInt(m[1]!, 16), type: parseInt(m[3]!, 16), handle: Buffer.from(m[4]!, 'hex') };
}

describe('fileHandlePath', () => {
  it('finds a file again from the handle the kernel shows for it (root: open_by_handle_at)', () => {
    const file = join(dir, 'watched');
    writeFileSync(file, 'x');
    expect(fileHandlePath(handleOf(file), 'test watch')).toBe(file);
  });

  it('a path the image gives is taken as is', () => {
    expect(fileHandlePath({ sdev: 0, type: 0, handle: Buffer.alloc(8), path: '/some/where' }, 'w')).toBe('/some/where');
  });

  it('a handle on a filesystem mounted nowhere here: FILE_HANDLE, naming what and the device', () => {
    expect(() => fileHandlePath({ sdev: (4095 << 20) | 12345, type: 1, handle: Buffer.alloc(8) }, 'inotify fd 3')).toThrow(
      expect.objectContaining({ code: 'FILE_HANDLE', message: expect.stringMatching(/^inotify fd 3: the file it names \(device 4095:12345\) cannot be found again/) }),
    );
  });
});
