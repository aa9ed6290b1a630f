import { CrtoolsError, ExitCode, parseCpuCap } from '@crtools/common';
import { optionalValueOption } from './flags.js';

/**
 * --cpu-cap[=CAP[,CAP...]] as dump, restore and cpuinfo check declare it. Its value is
 * optional (getopt's optional_argument): citty is told it is a flag, so that a bare --cpu-cap
 * never swallows the next word, and the values are read from the words themselves.
 */
export const CPU_CAP_ARG = {
  type: 'boolean',
  description: "--cpu-cap[=CAP,...]: CPU checks (fpu, cpu, ins, all, none; ^ removes one; default fpu,ins); given, dump writes cpuinfo.img and restore checks it",
} as const;

/** The command line's cpu_cap: every --cpu-cap occurrence over CRIU's default (common's parseCpuCap). */
export function cpuCapOf(rawArgs: string[]): number {
  if (rawArgs.includes('--no-cpu-cap')) {
    throw new CrtoolsError('USAGE', "unrecognized option '--no-cpu-cap' (--cpu-cap=none turns the checks off)", { exitCode: ExitCode.USAGE });
  }
  return parseCpuCap(optionalValueOption(rawArgs, '--cpu-cap'));
}
