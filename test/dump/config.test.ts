import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, criu, killAllStarted, startWorkload, tmp } from './helpers.js';

afterAll(() => killAllStarted());

/** A HOME whose .criu/default.conf holds `text`. */
function home(name: string, text: string): string {
  const h = tmp(name);
  mkdirSync(path.join(h, '.criu'), { recursive: true });
  writeFileSync(path.join(h, '.criu', 'default.conf'), text);
  return h;
}

describe('configuration files (criu.8): $HOME/.criu/default.conf, CRIU_CONFIG_FILE, --config; the command line wins', () => {
  it('options from the user file apply (comments, a quoted value with a space); the command line overrides them', () => {
    const w = startWorkload('pattern', ['1']);
    const h = home('cfg-home', '# kept running, logged where the file says\nleave-running\nlog-file "from config.log"   # a comment after the value\n\nverbosity 4\n');
    const dir = path.join(tmp('cfg-img'), 'img');
    const r = criu(['dump', '-t', String(w.pid), '-D', dir], 120_000, { HOME: h });
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(alive(w.pid)).toBe(true); // leave-running came from the file
    expect(readFileSync(path.join(dir, 'from config.log'), 'utf8')).toMatch(/Dumping processes/); // -v4 info lines: verbosity 4
    // the command line comes after the files: its -o wins
    const dir2 = path.join(tmp('cfg-img2'), 'img');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir2, '-o', 'cli.log'], 120_000, { HOME: h }).code).toBe(0);
    expect(existsSync(path.join(dir2, 'cli.log')) && !existsSync(path.join(dir2, 'from config.log'))).toBe(true);
    expect(alive(w.pid)).toBe(true);
    expect(w.check()).toBe('check ok bad=0');
    w.kill();
  });

  it('--no-default-config and --config skip the default files; CRIU_CONFIG_FILE is read even then', () => {
    const w = startWorkload('pattern', ['1']);
    const h = home('cfg-home2', 'leave-running\n');
    const env = tmp('cfg-env');
    writeFileSync(path.join(env, 'env.conf'), 'log-file env.log\n');
    writeFileSync(path.join(env, 'cli.conf'), 'leave-running\nlog-file cli-config.log\n');
    // --config FILE: the user file is not read, FILE is, after CRIU_CONFIG_FILE (so its log-file wins)
    const d1 = path.join(env, 'd1');
    expect(criu(['dump', '-t', String(w.pid), '-D', d1, '--config', path.join(env, 'cli.conf')], 120_000, { HOME: h, CRIU_CONFIG_FILE: path.join(env, 'env.conf') }).code).toBe(0);
    expect(existsSync(path.join(d1, 'cli-config.log'))).toBe(true);
    expect(alive(w.pid)).toBe(true);
    // --no-default-config: the user file's leave-running is not read, so the dump kills the tree
    const d2 = path.join(env, 'd2');
    expect(criu(['dump', '-t', String(w.pid), '-D', d2, '--no-default-config'], 120_000, { HOME: h, CRIU_CONFIG_FILE: path.join(env, 'env.conf') }).code).toBe(0);
    expect(existsSync(path.join(d2, 'env.log'))).toBe(true);
    for (let i = 0; i < 100 && alive(w.pid); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    expect(alive(w.pid)).toBe(false);
  });

  it('a bad line is one error naming the file and line, exit 1, and nothing is done', () => {
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('cfg-bad');
    const cases: [string, RegExp][] = [
      ['leave-running\nno-such-option 3\n', /^criu: .*bad\.conf:2: unknown option 'no-such-option'\n$/],
      ['--leave-running\n', /^criu: .*bad\.conf:1: '--leave-running': options are written without their leading dashes\n$/],
      ['log-file "unterminated\n', /^criu: .*bad\.conf:1: a quoted value without its closing quote\n$/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(path.join(dir, 'bad.conf'), text);
      const r = criu(['dump', '-t', String(w.pid), '-D', path.join(dir, 'img'), '--config', path.join(dir, 'bad.conf')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(path.join(dir, 'img'))).toBe(false);
    }
    const missing = criu(['check', '--config', path.join(dir, 'nope.conf')]);
    expect(missing).toMatchObject({ code: 1, stderr: `criu: configuration file ${path.join(dir, 'nope.conf')} does not exist\n` });
    // an option of another command is no error (one option table serves every command, as in CRIU)
    writeFileSync(path.join(dir, 'other.conf'), 'leave-running\n');
    expect(criu(['check', '--config', path.join(dir, 'other.conf')]).code).toBe(0);
    // --help works whatever the files say
    expect(criu(['dump', '--help', '--config', path.join(dir, 'bad.conf')]).code).toBe(0);
    expect(alive(w.pid)).toBe(true);
    expect(w.check()).toBe('check ok bad=0');
    w.kill();
  });
});
