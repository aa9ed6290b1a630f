import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { closeInherited, parseFdOption, refusePlugins } from '../src/criu/common-options.js';

const criuBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/criu.js');

function codeOf(f: () => unknown): { code?: string; exitCode?: number; message?: string } {
  try {
    f();
  } catch (e) {
    if (isCrtoolsError(e)) return { code: e.code, exitCode: e.exitCode, message: e.message };
    throw e;
  }
  return {};
}

describe('--close FD', () => {
  it('closes an inherited descriptor, skips one that is not open and leaves Node\'s own (event loop inodes, its pipes) alone', () => {
    const links = new Map<number, string>([
      [0, '/dev/null'], [3, 'anon_inode:[eventpoll]'], [4, 'pipe:[10]'], [5, 'pipe:[10]'], [7, 'pipe:[11]'], [8, '/tmp/out'], [9, 'socket:[12]'],
    ]);
    const closed: number[] = [];
    expect(closeInherited([3, 4, 6, 7, 8, 9, 0], links, (fd) => void closed.push(fd))).toEqual([7, 8, 9, 0]);
    expect(closed).toEqual([7, 8, 9, 0]);
  });

  it('a value that is not a descriptor number is a usage error', () => {
    expect(parseFdOption('close', '12')).toBe(12);
    expect(codeOf(() => parseFdOption('close', 'x'))).toMatchObject({ code: 'USAGE', message: 'invalid argument for --close: x' });
    expect(codeOf(() => parseFdOption('status-fd', '-1'))).toMatchObject({ code: 'USAGE' });
  });

  it('criu check --close 3: the caller sees its end of fd 3 closed while criu still runs', async () => {
    // criu check reading a kerndat document from stdin: it runs until stdin ends, so fd 3's
    // end-of-file can only come from --close
    const child = spawn(process.execPath, [criuBin, 'check', '--close', '3', '--kerndat', '-'], { stdio: ['pipe', 'ignore', 'ignore', 'pipe'] });
    const fd3 = child.stdio[3] as NodeJS.ReadableStream;
    const ended = await new Promise<boolean>((res) => {
      const t = setTimeout(() => res(false), 20_000);
      fd3.on('end', () => (clearTimeout(t), res(true)));
      fd3.resume();
    });
    expect(ended).toBe(true);
    expect(child.exitCode).toBe(null);
    child.stdin!.end('not json');
    await new Promise((res) => child.on('exit', res));
  }, 30_000);
});

describe('-L/--libdir', () => {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a CRIU plugin found there by name (exit 4); an empty directory is fine; an unreadable one is an error (exit 1)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'libdir-'));
    made.push(dir);
    expect(() => refusePlugins(dir, {})).not.toThrow();
    writeFileSync(path.join(dir, 'notes.txt'), '');
    writeFileSync(path.join(dir, 'amdgpu_plugin.so'), '');
    expect(codeOf(() => refusePlugins(dir, {}))).toEqual({
      code: 'UNSUPPORTED_PLUGIN',
      exitCode: 4,
      message: `plugin ${dir}/amdgpu_plugin.so is not supported: crtools loads no CRIU plugins`,
    });
    expect(codeOf(() => refusePlugins(undefined, { CRIU_LIBS_DIR: dir }))).toMatchObject({ code: 'UNSUPPORTED_PLUGIN' });
    expect(codeOf(() => refusePlugins(path.join(dir, 'none'), {}))).toMatchObject({ code: 'LIBDIR', exitCode: 1, message: `unable to open the plugins directory ${dir}/none: ENOENT` });
    expect(() => refusePlugins(undefined, {})).not.toThrow();
  });

  it('criu dump -L DIR with a plugin in it stops before touching anything, naming the plugin', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'libdir-'));
    made.push(dir);
    writeFileSync(path.join(dir, 'cuda_plugin.so'), '');
    // (and --lib DIR, getopt's abbreviation of --libdir, as CRIU's test/others/unix-callback writes it)
    for (const opt of [['-L', dir], ['--lib', dir], [`--libdir=${dir}`]]) {
      const r = spawnSync(process.execPath, [criuBin, 'dump', '-t', '4194303', '-D', dir, ...opt], { encoding: 'utf8' });
      expect(r.stderr, opt[0]).toBe(`criu: plugin ${dir}/cuda_plugin.so is not supported: crtools loads no CRIU plugins\n`);
      expect(r.status).toBe(4);
    }
  });
});
