import { runCommand, showUsage, type CommandDef } from 'citty';
import { CRIU_VERSION_TEXT, ExitCode, isCrtoolsError } from '@crtools/common';
import { namedOptions, unknownOption } from './options-check.js';

export type AnyCommand = CommandDef<any>;

/** A citty "resolvable": a value, a promise, or a function giving either (args, subcommands). */
export async function resolve<T>(v: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof v === 'function' ? await (v as () => T | Promise<T>)() : await v;
}

/**
 * Walk the subcommand chain by the leading positional words, so the leaf's
 * `run` result (its exit code) comes back to us: citty drops subcommand results.
 */
async function findLeaf(cmd: AnyCommand, rawArgs: string[]): Promise<{ leaf: AnyCommand; parent?: AnyCommand; args: string[] }> {
  let leaf = cmd;
  let parent: AnyCommand | undefined;
  let args = rawArgs;
  for (;;) {
    const subs = leaf.subCommands ? await resolve(leaf.subCommands as any) as Record<string, any> : undefined;
    const name = args[0];
    if (!subs || !name || name.startsWith('-') || !(name in subs)) return { leaf, parent, args };
    parent = leaf;
    leaf = await resolve(subs[name]);
    args = args.slice(1);
  }
}

/**
 * Run a citty command as a process: one line on stderr for any error, a stack
 * only with -v/--verbose (or CRTOOLS_DEBUG; criu's -v0..-v4 set log levels, not this), and the
 * error's exit code. A command's numeric return value is the exit code.
 */
export interface RunHooks {
  /** the leaf command's words as it is to see them (criu prepends its configuration files) */
  prepareArgs?: (leaf: AnyCommand, args: string[]) => Promise<string[]>;
  /** the exit code of a usage error (unknown option or command, malformed value): crtools' 2 unless the tool's own differs (criu: 1) */
  usageExit?: number;
  /** a command failed with this line (after prepareArgs, with the words it saw) */
  failed?: (leaf: AnyCommand, args: string[], line: string) => void;
}

export async function runMain(cmd: AnyCommand, hooks: RunHooks = {}): Promise<void> {
  const rawArgs = process.argv.slice(2);
  const verbose = rawArgs.some((a) => a === '--verbose' || a === '-v') || !!process.env.CRTOOLS_DEBUG;
  const name = (cmd.meta as { name?: string } | undefined)?.name ?? 'crtools';
  const usage = hooks.usageExit ?? ExitCode.USAGE;
  let ran: { leaf: AnyCommand; args: string[] } | undefined;
  try {
    if (rawArgs[0] === '--version' || rawArgs[0] === '-V') {
      // CRIU's first line (the CRIU version whose behaviour is implemented), then crtools' own
      process.stdout.write(`Version: ${CRIU_VERSION_TEXT}\ncrtools: ${(cmd.meta as { version?: string } | undefined)?.version ?? 'unknown'}\n`);
      return;
    }
    const found = await findLeaf(cmd, rawArgs);
    const { leaf, parent } = found;
    let args = found.args;
    const wantsHelp = args.includes('--help') || args.includes('-h');
    const hasSubs = !!leaf.subCommands && Object.keys(await resolve(leaf.subCommands as any) ?? {}).length > 0;
    if (wantsHelp || (hasSubs && !leaf.run && args.filter((a) => !a.startsWith('-')).length === 0)) {
      await showUsage(leaf, parent);
      process.exitCode = wantsHelp ? ExitCode.OK : usage;
      return;
    }
    if (hasSubs && !leaf.run && args[0] && !args[0].startsWith('-')) {
      process.stderr.write(`${name}: unknown command ${args[0]}\n`);
      process.exitCode = usage;
      return;
    }
    if (hooks.prepareArgs && leaf.run) args = await hooks.prepareArgs(leaf, args);
    const defs = leaf.args ? ((await resolve(leaf.args as any)) as Parameters<typeof namedOptions>[0]) : undefined;
    const unknown = defs ? unknownOption(defs, args) : undefined;
    if (unknown !== undefined) {
      process.stderr.write(`${name}: unrecognized option '${unknown}'\n`);
      process.exitCode = usage;
      return;
    }
    ran = { leaf, args };
    // citty parses with the options these words name only (namedOptions: the same values, at a
    // fraction of the cost for a command of ~100 options)
    const { result } = await runCommand(defs && !hasSubs ? { ...leaf, args: namedOptions(defs, args) } : leaf, { rawArgs: args });
    if (typeof result === 'number') process.exitCode = result;
  } catch (e) {
    if (ran && hooks.failed) {
      try {
        hooks.failed(ran.leaf, ran.args, e instanceof Error ? e.message : String(e));
      } catch {
        // (the error line on stderr below is what counts)
      }
    }
    if (isCrtoolsError(e)) {
      process.stderr.write(`${name}: ${e.message}\n`);
      if (verbose && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = e.exitCode === ExitCode.USAGE ? usage : e.exitCode;
    } else if (e instanceof Error && e.name === 'CLIError') {
      process.stderr.write(`${name}: ${e.message}\n`);
      process.exitCode = usage;
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      process.stderr.write(`${name}: ${msg}\n`);
      if (verbose && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = ExitCode.FAILED;
    }
  }
}
