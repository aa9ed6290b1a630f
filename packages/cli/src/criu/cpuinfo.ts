import { defineCommand } from 'citty';
import path from 'node:path';
import { cpuCapNames, CriuLog, ExitCode, isCrtoolsError } from '@crtools/common';
import { checkCpuinfoImage, CpuinfoErrorCode, writeCpuinfoImage } from '@crtools/cpuinfo';
import { CPU_CAP_ARG, cpuCapOf } from './cpu-cap.js';
import { verbosityOf } from './flags.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';

export interface CpuinfoRunOptions {
  images_dir: string;
  work_dir?: string;
  log_file?: string;
  log_level: number;
  /** (check) the rules; 0 means every rule, as in CRIU */
  cpu_cap: number;
}

export interface CpuinfoIo {
  /** one line for the user when the command fails, and log lines at -v3 and up without -o */
  err: (line: string) => void;
}

/** CRIU's `criu cpuinfo dump` fails with main's -1 once the images directory is open. */
const CRIU_MINUS_ONE = 255;

/**
 * The core of `criu cpuinfo dump|check`: exit codes as CRIU's. dump writes cpuinfo.img into the
 * images directory (which must exist: exit 1) and exits 0, or 255 when that fails; check exits 0
 * when the image fits this CPU under cpu_cap, 1 otherwise (a missing or unreadable image too),
 * with one line saying why. Nothing goes to stdout, as with CRIU.
 */
export async function runCpuinfo(action: 'dump' | 'check', o: CpuinfoRunOptions, io: CpuinfoIo): Promise<number> {
  const work = o.work_dir ?? o.images_dir;
  const log = new CriuLog(o.log_level, o.log_file ? path.resolve(work, o.log_file) : undefined, io.err);
  try {
    if (action === 'dump') {
      const file = await writeCpuinfoImage(o.images_dir);
      log.info(`cpu: ${file} written`);
    } else {
      const img = await checkCpuinfoImage(o.images_dir, o.cpu_cap, { logger: log.logger('cpu') });
      log.info(`cpu: the image's CPU (${img.vendor_id} family ${img.cpu_family} model ${img.model}) fits this one (--cpu-cap ${cpuCapNames(o.cpu_cap)})`);
    }
    return ExitCode.OK;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log.error('cpu', msg);
    io.err(`criu: ${msg}`);
    if (action === 'check') return ExitCode.FAILED;
    return isCrtoolsError(e) && e.code === CpuinfoErrorCode.DIR ? ExitCode.FAILED : CRIU_MINUS_ONE;
  } finally {
    log.close();
  }
}

const CPUINFO_ARGS = {
  'images-dir': { type: 'string', alias: 'D', description: 'images directory (cpuinfo.img)', default: '.' },
  'work-dir': { type: 'string', alias: 'W', description: 'directory for the log (default: the images directory)' },
  'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
  verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
  'cpu-cap': CPU_CAP_ARG,
} as const;

function subcommand(action: 'dump' | 'check', description: string) {
  return defineCommand({
    meta: { name: action, description },
    args: { ...CPUINFO_ARGS, ...notYetArgs(CPUINFO_ARGS) },
    async run({ args, rawArgs }) {
      refuseNotYet(args, CPUINFO_ARGS);
      const code = await runCpuinfo(
        action,
        {
          images_dir: String(args['images-dir']),
          work_dir: args['work-dir'] ? String(args['work-dir']) : undefined,
          log_file: args['log-file'] ? String(args['log-file']) : undefined,
          log_level: args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs),
          cpu_cap: cpuCapOf(rawArgs),
        },
        { err: (l) => process.stderr.write(l + '\n') },
      );
      process.exitCode = code;
      return code;
    },
  });
}

/** `criu cpuinfo dump|check` (cpuinfo.img, see @crtools/cpuinfo). */
export const cpuinfoCommand = defineCommand({
  meta: { name: 'cpuinfo', description: 'cpuinfo dump: write this CPU into cpuinfo.img; cpuinfo check: does cpuinfo.img fit this CPU' },
  subCommands: {
    dump: subcommand('dump', 'writes cpu information into image file'),
    check: subcommand('check', 'validates cpu information read from image file (--cpu-cap: which rules; none: all)'),
  },
});
