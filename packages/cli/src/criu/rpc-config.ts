/**
 * criu_opts.config_file for the RPC server: the file read with the same parser as `--config`
 * and its options taken with the same flag definitions as `criu dump` / `criu restore`, so a
 * runc.conf means over RPC what it means on the command line. Only what the file sets is
 * returned (the server lets it override the request, as CRIU does); a file that does not exist
 * sets nothing, as in CRIU.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'citty';
import { CrtoolsError, ExitCode, type CriuOptions } from '@crtools/common';
import type { ConfigReader } from '@crtools/rpc';
import { unknownOption } from '../options-check.js';
import { parseConfig } from './config.js';
import { DUMP_ARGS, dumpOptionsFromArgs } from './dump.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';
import { RESTORE_ARGS, restoreOptionsFromArgs } from './restore.js';

type Defs = Record<string, { type?: string; alias?: string | string[]; required?: boolean; default?: unknown }>;

/** The command's flag definitions for a file: nothing required (the request gives the pid). */
function defsOf(own: Defs): Defs {
  const out: Defs = {};
  for (const [k, v] of Object.entries({ ...own, ...notYetArgs(own) })) out[k] = { ...v, required: false };
  return out;
}

export const rpcConfigReader: ConfigReader = (file, command) => {
  // as CRIU: a configuration file the request names that does not exist sets nothing (runc
  // names /etc/criu/runc.conf in every request, whether there is one or not)
  if (!existsSync(file)) return {};
  const statements = parseConfig(readFileSync(file, 'utf8'), file);
  // CHECK takes only where the log goes from a file: read it as restore's flags
  const own = (command === 'dump' ? DUMP_ARGS : RESTORE_ARGS) as unknown as Defs;
  const other = (command === 'dump' ? RESTORE_ARGS : DUMP_ARGS) as unknown as Defs;
  const toOptions = command === 'dump' ? dumpOptionsFromArgs : restoreOptionsFromArgs;
  const defs = defsOf(own);
  const words: string[] = [];
  for (const st of statements) {
    if (unknownOption(defs, st.words) === undefined) words.push(...st.words);
    // (an option of the other command is no error in a shared file, as on the command line)
    else if (unknownOption(defsOf(other), st.words) !== undefined) {
      throw new CrtoolsError('BAD_CONFIG', `${st.file}:${st.line}: unknown option '${st.words[0]!.slice(2)}'`, { exitCode: ExitCode.FAILED, context: { file: st.file, line: st.line } });
    }
  }
  const parsed = parseArgs(words, defs as never) as Record<string, unknown>;
  refuseNotYet(parsed, own);
  const base = toOptions(parseArgs([], defs as never) as Record<string, unknown>, []) as Record<string, unknown>;
  const set = toOptions(parsed, words) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(set)) if (JSON.stringify(v) !== JSON.stringify(base[k])) out[k] = v;
  if (command === 'check') {
    const { log_file, work_dir, images_dir, log_level } = out as Partial<CriuOptions>;
    return Object.fromEntries(Object.entries({ log_file, work_dir, images_dir, log_level }).filter(([, v]) => v !== undefined));
  }
  return out as Partial<CriuOptions>;
};
