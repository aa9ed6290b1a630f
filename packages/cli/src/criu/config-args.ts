import { CrtoolsError, ExitCode } from '@crtools/common';
import { unknownOption } from '../options-check.js';
import { resolve, type AnyCommand } from '../run.js';
import { readConfigs, splitConfigFlags } from './config.js';

type ArgDefs = Parameters<typeof unknownOption>[0];

async function argsOf(cmd: AnyCommand): Promise<ArgDefs> {
  return ((await resolve(cmd.args as unknown)) ?? {}) as ArgDefs;
}

/**
 * A criu command's words with its configuration files in front (the command line comes last,
 * so it wins). As in CRIU, where one option table serves every command, an option of another
 * command is no error in a configuration file: this command does not use it and leaves it. An
 * option no criu command knows is an error naming the file and line.
 */
export async function criuArgs(criu: AnyCommand, leaf: AnyCommand, args: string[]): Promise<string[]> {
  const { rest, ...flags } = splitConfigFlags(args);
  const statements = readConfigs(flags, process.env);
  if (!statements.length) return rest;
  const mine = await argsOf(leaf);
  let others: ArgDefs[] | undefined;
  const words: string[] = [];
  for (const st of statements) {
    if (unknownOption(mine, st.words) === undefined) {
      words.push(...st.words);
      continue;
    }
    if (!others) {
      const subs = (await resolve(criu.subCommands as unknown)) as Record<string, unknown> | undefined;
      others = await Promise.all(Object.values(subs ?? {}).map(async (s) => argsOf((await resolve(s)) as AnyCommand)));
    }
    if (!others.some((defs) => unknownOption(defs, st.words) === undefined)) {
      throw new CrtoolsError('BAD_CONFIG', `${st.file}:${st.line}: unknown option '${st.words[0]!.slice(2)}'`, { exitCode: ExitCode.FAILED, context: { file: st.file, line: st.line } });
    }
  }
  return [...words, ...rest];
}
