import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { critBin } from '../lib/paths.js';
import { alive, criu, killAllStarted, startWorkload, tmp } from './helpers.js';

afterAll(() => killAllStarted());

/** Not traced by anyone (TracerPid 0). */
function untraced(pid: number): boolean {
  return /^TracerPid:\s+0$/m.test(spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout);
}

describe('unknown options are usage errors, and nothing is done', () => {
  it('criu dump --leave-runing (a typo of --leave-running): refused before the tree is touched', () => {
    const w = startWorkload('pattern', ['1']);
    const dir = path.join(tmp('typo'), 'img');
    const r = criu(['dump', '--leave-runing', '-t', String(w.pid), '-D', dir]);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: "criu: unrecognized option '--leave-runing'\n" });
    expect(alive(w.pid) && untraced(w.pid)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(w.check()).toBe('check ok bad=0');
    w.kill();
  });

  it('every command refuses an option it does not know (long or short); known forms still parse', () => {
    for (const args of [['restore', '-D', '/nonexistent', '--restore-detatched'], ['restore', '-q'], ['check', '--extar'], ['dedup', '--bogus'], ['dump', '-Q', '-t', '1234']]) {
      const r = criu(args);
      expect(r.code, args.join(' ')).toBe(1); // criu's usage errors exit 1 (getopt's in CRIU); crit's 2 (argparse)
      expect(r.stderr).toMatch(/^criu: unrecognized option '-{1,2}[A-Za-z-]+'\n$/);
    }
    for (const args of [['decode', '--prety', '-i', 'x'], ['x', 'dir', 'ps', '--formt', 'json'], ['info', '-z', 'x']]) {
      const r = spawnSync(process.execPath, [critBin, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^crit: unrecognized option '-{1,2}[a-z]+'\n$/);
    }
    // CRIU's own forms are known: -v4, -vvv, --no-cache, --opt=value, a value after its option
    const ok = criu(['restore', '-D', '/nonexistent-dir', '-v4', '-d', '-l', '-j', '--cpu-cap=none', '-o', 'x.log']);
    expect(ok.stderr).not.toMatch(/unrecognized option/);
    expect(criu(['check', '-vvv', '--no-cache', '--feature', 'list']).code).toBe(0);
    // as in CRIU, whose one option table serves every command, an option of another command is
    // no error: zdtm passes --pidfile (restore's) and --pre-dump-mode (pre-dump's) to every dump
    const other = criu(['dedup', '-D', '/nonexistent-dir', '--pidfile', '/nonexistent-dir/p', '--pre-dump-mode', 'read', '--tcp-established']);
    expect(other.stderr).not.toMatch(/unrecognized option/);
    expect(criu(['check', '--pidfile', '/x', '--feature', 'list']).code).toBe(0);
  });

  it('a criu.8 option crtools does not carry out yet is refused by name (exit 4), from the command line or a configuration file; the tree untouched', () => {
    const w = startWorkload('pattern', ['1']);
    const root = tmp('notyet');
    for (const [args, name, issue] of [[['--evasive-devices'], 'evasive-devices', 14], [['--allow-uprobes'], 'allow-uprobes', 15], [['--stream'], 'stream', 16], [['--lsm-profile', 'x'], 'lsm-profile', 17], [['--skip-mnt', '/x'], 'skip-mnt', 17]] as const) {
      const dir = path.join(root, name);
      const r = criu(['dump', '-t', String(w.pid), '-D', dir, ...args]);
      expect(r, name).toMatchObject({ code: 4, stdout: '', stderr: `criu: --${name} is not supported yet (crtools issue ${issue})\n` });
      expect(existsSync(dir)).toBe(false);
    }
    // --external: its unix[INO], net[INO]:KEY, mnt[KEY]:VAL and mnt[][:m|:s] forms are carried; a
    // malformed mount form is a usage error; the other kinds are refused by name, as early
    const ext = criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'external'), '--external', 'mnt[]:x']);
    expect(ext).toMatchObject({ code: 1, stdout: '', stderr: 'criu: invalid --external mnt[]:x (mnt[KEY]:VAL, or mnt[]:FLAGS with FLAGS m or s)\n' });
    const dev = criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'external'), '--external', 'dev[8/1]:d']);
    expect(dev).toMatchObject({ code: 4, stdout: '', stderr: 'criu: --external dev[8/1]:d is not supported yet (only unix[INO], tty[RDEV:DEV], net[INO]:KEY, mnt[KEY]:VAL and mnt[][:m|:s] are; crtools issue 17)\n' });
    const map = criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'external'), '-M', 'nokey']);
    expect(map).toMatchObject({ code: 1, stdout: '', stderr: 'criu: invalid --ext-mount-map nokey (KEY:VAL or auto)\n' });
    // the container options' values, as CRIU parses them
    expect(criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'external'), '--manage-cgroups=loose'])).toMatchObject({ code: 1, stderr: 'criu: invalid argument for --manage-cgroups: loose (ignore, none, props, soft, full, strict)\n' });
    expect(criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'external'), '--empty-ns', 'ipc'])).toMatchObject({ code: 1, stderr: 'criu: invalid argument for --empty-ns: ipc (only net)\n' });
    expect(existsSync(path.join(root, 'external'))).toBe(false);
    writeFileSync(path.join(root, 'c.conf'), 'allow-uprobes\n');
    const c = criu(['restore', '-D', path.join(root, 'none'), '--config', path.join(root, 'c.conf')]);
    expect(c).toMatchObject({ code: 4, stderr: 'criu: --allow-uprobes is not supported yet (crtools issue 15)\n' });
    expect(criu(['dump', '-t', String(w.pid), '-D', path.join(root, 't'), '--timeout', 'soon']).stderr).toBe('criu: invalid argument for --timeout: soon\n');
    // CRIU opens its log before it looks at the options: the refusal is in the log named (in the
    // work directory, else the images directory), where callers such as zdtm read it
    mkdirSync(path.join(root, 'logged'));
    expect(criu(['dump', '-t', String(w.pid), '-D', path.join(root, 'logged'), '-o', 'dump.log', '-v4', '--allow-uprobes']).code).toBe(4);
    expect(readFileSync(path.join(root, 'logged', 'dump.log'), 'utf8')).toMatch(/^\(\d\d\.\d{6}\) Error \(dump\): --allow-uprobes is not supported yet \(crtools issue 15\)\n$/);
    expect(criu(['restore', '-D', path.join(root, 'none'), '-W', path.join(root, 'logged'), '--log-file=rst.log', '--allow-uprobes']).code).toBe(4);
    expect(readFileSync(path.join(root, 'logged', 'rst.log'), 'utf8')).toMatch(/Error \(restore\): --allow-uprobes is not supported yet/);
    expect(readdirSync(path.join(root, 'logged')).sort()).toEqual(['dump.log', 'rst.log']);
    expect(alive(w.pid) && untraced(w.pid)).toBe(true);
    expect(w.check()).toBe('check ok bad=0');
    w.kill();
  });
});
