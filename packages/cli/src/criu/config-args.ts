import type { CommandDef } from 'citty';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { unknownOption } from '../options-check.js';
import { readConfigs, withoutConfigFlags } from './config.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCommand = CommandDef<any>;
type ArgDefs = Parameters<typeof unknownOption>[0];

async function argsOf(cmd: AnyCommand): Promise<ArgDefs> {
  const a = cmd.args;
  return ((typeof a === 'function' ? await (a as () => unknown)() : await a) ?? {}) as ArgDefs;
}

/**
 * A criu command's words with its configuration files in front (the command line comes last,
 * so it wins). As in CRIU, where one option table serves every command, an option of another
 * command is no error in a configuration file: this command does not use it and leaves it. An
 * option no criu command knows is an error naming the file and line.
 */
export async function criuArgs(criu: AnyCommand, leaf: AnyCommand, args: string[]): Promise<string[]> {
  const statements = readConfigs(args, process.env);
  if (!statements.length) return withoutConfigFlags(args);
  const mine = await argsOf(leaf);
  let others: ArgDefs[] | undefined;
  const words: string[] = [];
  for (const st of statements) {
    if (unknownOption(mine, st.words) === undefined) {
      words.push(...st.words);
      continue;
    }
    if (!others) {
      const subs = (typeof criu.subCommands === 'function' ? await (criu.subCommands as () => unknown)() : criu.subCommands) as Record<string, unknown>;
      others = await Promise.all(Object.values(subs ?? {}).map(async (s) => argsOf((typeof s === 'function' ? await (s as () => unknown)() : await s) as AnyCommand)));
    }
    if (!others.some((defs) => unknownOption(defs, st.words) === undefined)) {
      throw new CrtoolsError('BAD_CONFIG', `${st.file}:${st.line}: unknown option '${st.words[0]!.slice(2)}'`, { exitCode: ExitCode.FAILED, context: { file: st.file, line: st.line } });
    }
  }
  return [...words, ...withoutConfigFlags(args)];
}
