/**
 * CRIU's configuration files (criu.8, CONFIGURATION FILES): options read before the command
 * line, one a line, written without the leading dashes: `tcp-established`, `log-file /tmp/d.log`,
 * `lsm-profile "selinux:x y"`; `#` starts a comment. Read in this order, each overriding the one
 * before: /etc/criu/default.conf, $HOME/.criu/default.conf (neither with --no-default-config or
 * --config), the file CRIU_CONFIG_FILE names, the file --config names; then the command line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';

export const GLOBAL_CONFIG = '/etc/criu/default.conf';

/**
 * Options whose value is optional (getopt's optional_argument): `cpu-cap fpu` in a file means
 * --cpu-cap=fpu (CRIU itself would read a bare --cpu-cap and a stray word; `cpu-cap=fpu` works
 * in both).
 */
const OPTIONAL_VALUE = new Set(['cpu-cap']);

/** One option of a configuration file as command-line words (`--opt` or `--opt value`). */
export interface ConfigStatement {
  words: string[];
  file: string;
  line: number;
}

function badConfig(file: string, line: number, why: string): CrtoolsError {
  return new CrtoolsError('BAD_CONFIG', `${file}:${line}: ${why}`, { exitCode: ExitCode.FAILED, context: { file, line } });
}

/** The statements of a configuration file's text. */
export function parseConfig(text: string, file: string): ConfigStatement[] {
  const out: ConfigStatement[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const s = raw.replace(/^\s+/, '');
    if (!s || s.startsWith('#')) return;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(s.replace(/\s+$/, ''))!;
    const name = m[1]!;
    if (name.startsWith('-')) throw badConfig(file, line, `'${name}': options are written without their leading dashes`);
    let rest = (m[2] ?? '').trim();
    if (!rest || rest.startsWith('#')) return void out.push({ words: [`--${name}`], file, line });
    let value: string;
    if (rest.startsWith('"')) {
      // up to the next quote not escaped by a backslash; only a comment may follow it
      let end = 1;
      while (end < rest.length && (rest[end] !== '"' || rest[end - 1] === '\\')) end++;
      if (end >= rest.length) throw badConfig(file, line, 'a quoted value without its closing quote');
      value = rest.slice(1, end).replace(/\\"/g, '"');
      const after = rest.slice(end + 1).trim();
      if (after && !after.startsWith('#')) throw badConfig(file, line, `more than one value for '${name}'`);
    } else {
      rest = rest.replace(/\s+#.*$/, '');
      value = rest;
    }
    // an option whose value is optional takes it only as --opt=VALUE on a command line
    out.push({ words: OPTIONAL_VALUE.has(name) ? [`--${name}=${value}`] : [`--${name}`, value], file, line });
  });
  return out;
}

/** What the command line says of configuration files, and its words without those flags. */
export interface ConfigFlags {
  /** --config FILE (or --config=FILE) */
  config?: string;
  /** --no-default-config, or implied by --config */
  noDefault: boolean;
}

/** Takes --config FILE / --config=FILE and --no-default-config out of a command's words. */
export function splitConfigFlags(args: readonly string[]): ConfigFlags & { rest: string[] } {
  const rest: string[] = [];
  let config: string | undefined;
  let noDefault = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--no-default-config') noDefault = true;
    else if (a === '--config') config = args[++i];
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else rest.push(a);
  }
  return { rest, ...(config !== undefined ? { config } : {}), noDefault: noDefault || config !== undefined };
}

/** Which configuration files apply, in order, for these flags and environment. */
export function configFiles(flags: ConfigFlags, env: NodeJS.ProcessEnv): { file: string; explicit: boolean }[] {
  const files: { file: string; explicit: boolean }[] = [];
  if (!flags.noDefault) {
    files.push({ file: GLOBAL_CONFIG, explicit: false });
    if (env.HOME) files.push({ file: join(env.HOME, '.criu', 'default.conf'), explicit: false });
  }
  if (env.CRIU_CONFIG_FILE) files.push({ file: env.CRIU_CONFIG_FILE, explicit: true });
  if (flags.config !== undefined) files.push({ file: flags.config, explicit: true });
  return files;
}

/** The statements of every configuration file that applies (a named file that is missing is an error). */
export function readConfigs(flags: ConfigFlags, env: NodeJS.ProcessEnv): ConfigStatement[] {
  const out: ConfigStatement[] = [];
  for (const { file, explicit } of configFiles(flags, env)) {
    if (!existsSync(file)) {
      if (explicit) throw new CrtoolsError('BAD_CONFIG', `configuration file ${file} does not exist`, { exitCode: ExitCode.FAILED, context: { file } });
      continue;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CrtoolsError('BAD_CONFIG', `configuration file ${file}: ${(e as Error).message}`, { exitCode: ExitCode.FAILED, context: { file } });
    }
    out.push(...parseConfig(text, file));
  }
  return out;
}
