import { CrtoolsError, ExitCode } from '@crtools/common';
import { positionalWords, unknownOption, withoutOthersOptions } from '../options-check.js';
import { resolve, type AnyCommand } from '../run.js';
import { readConfigs, splitConfigFlags } from './config.js';
import { repeatedOption } from './flags.js';
import { NOT_YET_OPTIONS } from './not-yet-options.js';

type ArgDefs = Parameters<typeof unknownOption>[0];

async function argsOf(cmd: AnyCommand): Promise<ArgDefs> {
  return ((await resolve(cmd.args as unknown)) ?? {}) as ArgDefs;
}

/** The options of every criu command (each command's module loaded: only when an option is not the leaf's). */
async function allArgs(criu: AnyCommand): Promise<ArgDefs[]> {
  const subs = (await resolve(criu.subCommands as unknown)) as Record<string, unknown> | undefined;
  return Promise.all(Object.values(subs ?? {}).map(async (s) => argsOf((await resolve(s)) as AnyCommand)));
}

/**
 * A criu command's words with its configuration files in front (the command line comes last,
 * so it wins). As in CRIU, where one option table serves every command, an option of another
 * command is no error, on the command line or in a configuration file: this command does not
 * use it and leaves it (zdtm passes --pidfile to every dump). An option no criu command knows
 * is an error naming it (and the file and line).
 */
export async function criuArgs(criu: AnyCommand, leaf: AnyCommand, args: string[]): Promise<string[]> {
  const { rest: line, ...flags } = splitConfigFlags(args);
  const statements = readConfigs(flags, process.env);
  const mine = await argsOf(leaf);
  let others: ArgDefs[] | undefined;
  // as CRIU's one option table, whose parser judges each value whatever the command: a value
  // no criu takes (--file-validation bogus) is a usage error for a command that does not use it too
  for (const [name, o] of Object.entries(NOT_YET_OPTIONS)) {
    if (!o.accept || name in mine) continue;
    for (const v of repeatedOption(line, `--${name}`)) {
      const e = o.accept(v);
      if (e?.exitCode === ExitCode.USAGE) throw e;
    }
  }
  const rest = unknownOption(mine, line) === undefined ? line : withoutOthersOptions(mine, (others ??= await allArgs(criu)), line);
  // as CRIU's: a command that takes no operands stops at one (`criu dump -t 1 2`: a second pid
  // is no second tree); --exec-cmd's command is refused by name on its own, and so are the
  // deprecated commands, which declare no options
  const extra = leaf.args ? positionalWords(mine, rest) : [];
  if (extra.length && !Object.values(mine).some((d) => d.type === 'positional') && !rest.includes('--exec-cmd')) {
    const name = (leaf.meta as { name?: string } | undefined)?.name ?? 'this';
    throw new CrtoolsError('USAGE', `excessive parameter${extra.length > 1 ? 's' : ''} for command ${name}: ${extra.join(' ')}`, { exitCode: ExitCode.USAGE });
  }
  if (!statements.length) return rest;
  const words: string[] = [];
  for (const st of statements) {
    if (unknownOption(mine, st.words) === undefined) {
      words.push(...st.words);
      continue;
    }
    others ??= await allArgs(criu);
    if (!others.some((defs) => unknownOption(defs, st.words) === undefined)) {
      throw new CrtoolsError('BAD_CONFIG', `${st.file}:${st.line}: unknown option '${st.words[0]!.slice(2)}'`, { exitCode: ExitCode.FAILED, context: { file: st.file, line: st.line } });
    }
  }
  return [...words, ...rest];
}
