/**
 * CRIU's --cpu-cap: which CPU compatibility rules a dump records and a restore (or `criu cpuinfo
 * check`) enforces, as bits of criu_opts.cpu_cap.
 *
 * - FPU: the image's xsave features and area sizes must be this CPU's (and its FPU, FXSR,
 *   OSXSAVE and XSAVES bits present here);
 * - INS: every instruction-set feature of the image's CPU must be present here;
 * - CPU: every capability word must be equal (strict);
 * - IMAGE: not a value of the option but what giving it implies: dump writes cpuinfo.img and
 *   restore checks it. Any --cpu-cap value that leaves some rule set sets it.
 */
import { CrtoolsError } from './error.js';
import { ExitCode } from './exit-codes.js';

/** CRIU's --cpu-cap bits (criu_opts.cpu_cap). */
export const CPU_CAP = { NONE: 0, FPU: 1, CPU: 2, INS: 4, IMAGE: 8, ALL: 1 | 2 | 4 } as const;
/** What CRIU checks when --cpu-cap is not given (no cpuinfo.img is written nor read then). */
export const CPU_CAP_DEFAULT = CPU_CAP.FPU | CPU_CAP.INS;

/** The values --cpu-cap takes, and the bits each stands for. */
const VALUES: Record<string, number> = { fpu: CPU_CAP.FPU, cpu: CPU_CAP.CPU, ins: CPU_CAP.INS, all: CPU_CAP.ALL };

function badValue(value: string, at: string): CrtoolsError {
  return new CrtoolsError('USAGE', `--cpu-cap: unknown value '${at}' in '${value}' (fpu, cpu, ins, all, none; ^ removes one)`, {
    exitCode: ExitCode.USAGE,
    context: { option: 'cpu-cap', value },
  });
}

/**
 * One --cpu-cap occurrence applied to `bits`, as CRIU's getopt loop applies it:
 * - given without a value (`--cpu-cap`): every rule, and the image;
 * - a list of fpu, cpu, ins, all, none (CRIU reads the names back to back: commas only reset
 *   `^`); each adds its rules to what was there (the default: fpu,ins), `^` before one removes
 *   them instead (a second `^` cancels the first); none clears everything, ^none sets every rule;
 * - whatever leaves some bit set also sets IMAGE.
 * Anything else is a usage error.
 */
export function applyCpuCap(bits: number, value: string | undefined): number {
  if (value === undefined) return bits | CPU_CAP.ALL | CPU_CAP.IMAGE;
  let inverse = false;
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c === '^' || c === ',') {
      inverse = c === '^' ? !inverse : false;
      i++;
      continue;
    }
    const rest = value.slice(i);
    if (rest.startsWith('none')) {
      bits = inverse ? CPU_CAP.ALL : CPU_CAP.NONE;
      i += 4;
      continue;
    }
    const name = Object.keys(VALUES).find((n) => rest.startsWith(n));
    if (!name) throw badValue(value, rest.split(',')[0]!);
    bits = inverse ? bits & ~VALUES[name]! : bits | VALUES[name]!;
    i += name.length;
  }
  return bits === CPU_CAP.NONE ? bits : bits | CPU_CAP.IMAGE;
}

/**
 * Every --cpu-cap occurrence of a command line, in order (undefined: given without `=VALUE`),
 * applied over CRIU's default: the command's cpu_cap.
 */
export function parseCpuCap(values: readonly (string | undefined)[], start: number = CPU_CAP_DEFAULT): number {
  return values.reduce<number>((bits, v) => applyCpuCap(bits, v), start);
}

/** The bits as --cpu-cap names (`fpu,ins,image`; `none` for 0). */
export function cpuCapNames(bits: number): string {
  const names = (['fpu', 'cpu', 'ins', 'image'] as const).filter((n) => bits & CPU_CAP[n.toUpperCase() as 'FPU' | 'CPU' | 'INS' | 'IMAGE']);
  return names.length ? names.join(',') : 'none';
}
