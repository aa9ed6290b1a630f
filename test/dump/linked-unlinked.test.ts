/**
 * An open file whose name was removed while the inode keeps another (ln a b; rm a: zdtm's
 * unlink_fstat03, unhashed_proc): kept as a ghost, it came back as a copy that b no longer led to
 * (the restore succeeded with the state changed). CRIU 4.2 keeps it by a hard link made at dump
 * (--link-remap) and refuses it without; crtools refuses it by name (exit 4, the tree left
 * running, the descriptor still on b's inode). Once b is gone too (nlink 0) it is a ghost file
 * again and comes back with its contents.
 */
import { readFileSync, readlinkSync, statSync, unlinkSync, writeFileSync, linkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, expectDumpRefused, killAllStarted, killTree, procStatus, sleep, startWorkload, tmp, waitGone, waitReaped, criu } from './helpers.js';
import { killRestored, restoreDir } from '../restore/roundtrip.js';

afterEach(() => {
  killRestored();
  killAllStarted();
});

describe('an unlinked file that keeps other links', () => {
  it('is refused by name at dump (exit 4), the tree left running on the same file; with no link left it is a ghost again', () => {
    const dir = tmp('linked-unlinked');
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, 'hello');
    linkSync(a, b);
    const w = startWorkload('launch', ['/bin/sh', '-c', `exec 3<>${a}; rm ${a}; exec sleep 1000`], dir);
    let link = '';
    for (let i = 0; i < 500 && !(link.endsWith(' (deleted)') && readlinkSync(`/proc/${w.pid}/exe`).endsWith('/sleep')); i++) {
      sleep(10);
      try {
        link = readlinkSync(`/proc/${w.pid}/fd/3`);
      } catch {
        /* not yet */
      }
    }
    expect(link).toBe(`${a} (deleted)`);
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    expectDumpRefused(w.pid, /fd 3.*the file's name was removed, but it still has 1 other link\(s\)/, 'linked-unlinked');
    expect(alive(w.pid)).toBe(true);
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    // the last name gone: a ghost file, restored with its contents
    unlinkSync(b);
    const img = tmp('linked-unlinked-ghost');
    const d = criu(['dump', '-t', String(w.pid), '-D', img]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restoreDir(img);
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
    expect(readFileSync(`/proc/${w.pid}/fd/3`, 'utf8')).toBe('hello');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });
});
