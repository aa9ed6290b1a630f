import { defineCommand, showUsage } from 'citty';
import { ExitCode } from '@crtools/common';
import { runRestore } from '../restore/run.js';

/** CRIU's -v, -vN, -vvv: the verbosity level (default 2). */
export function verbosityOf(rawArgs: string[]): number {
  let v = 2;
  for (const a of rawArgs) {
    const m = /^-v([0-4])$/.exec(a);
    if (m) v = Number(m[1]);
    else if (/^-v+$/.test(a)) v = Math.min(4, 2 + a.length - 1);
    else if (a.startsWith('--verbosity=')) v = Number(a.slice(12));
  }
  return v;
}

/** Every --inherit-fd value (CRIU takes the option more than once). */
export function inheritFdOf(rawArgs: string[]): string[] {
  const out: string[] = [];
  rawArgs.forEach((a, i) => {
    if (a === '--inherit-fd' && i + 1 < rawArgs.length) out.push(rawArgs[i + 1]!);
    else if (a.startsWith('--inherit-fd=')) out.push(a.slice('--inherit-fd='.length));
  });
  return out;
}

export const restoreCommand = defineCommand({
  meta: { name: 'restore', description: 'restore processes from a checkpoint image directory' },
  args: {
    'images-dir': { type: 'string', alias: 'D', description: 'directory with the images' },
    'work-dir': { type: 'string', alias: 'W', description: 'directory for logs and the pidfile (default: the images directory)' },
    'restore-detached': { type: 'boolean', alias: 'd', default: false, description: 'return once the tasks run, without waiting for the root' },
    'restore-sibling': { type: 'boolean', alias: 'S', default: false, description: 'restore the root as a sibling of criu' },
    'leave-stopped': { type: 'boolean', alias: 's', default: false, description: 'leave the tasks stopped after restore' },
    pidfile: { type: 'string', description: 'write the root task pid to this file' },
    'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
    'cpu-cap': { type: 'string', description: "CPU compatibility checks: 'none' skips them (default: fpu)" },
    'shell-job': { type: 'boolean', alias: 'j', default: false, description: "the root was a shell's job: it joins criu's session (and group)" },
    'inherit-fd': { type: 'string', description: 'fd[N]:resource — use descriptor N for the file named resource (pipe:[ino], socket:[ino], path); repeatable' },
  },
  async run({ args, rawArgs }) {
    if (rawArgs.includes('--help') || rawArgs.includes('-h')) {
      await showUsage(restoreCommand);
      return 0;
    }
    const dir = args['images-dir'];
    if (!dir) {
      process.stderr.write('criu: restore needs -D/--images-dir\n');
      process.exitCode = ExitCode.USAGE;
      return ExitCode.USAGE;
    }
    const code = await runRestore(
      {
        imagesDir: dir,
        workDir: args['work-dir'],
        detached: args['restore-detached'],
        sibling: args['restore-sibling'],
        leaveStopped: args['leave-stopped'],
        pidfile: args.pidfile,
        logFile: args['log-file'],
        verbosity: verbosityOf(rawArgs),
        cpuCap: args['cpu-cap'],
        inheritFd: inheritFdOf(rawArgs),
        shellJob: args['shell-job'],
      },
      { err: (l) => process.stderr.write(l + '\n') },
    );
    process.exitCode = code;
    return code;
  },
});
