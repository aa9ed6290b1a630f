import { defineCommand } from 'citty';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { preDump } from '@crtools/dump';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { DUMP_ARGS, dumpOptionsFromArgs } from './dump.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';
import { dumpStatsText } from './stats.js';
import { interruptible } from './interrupt.js';

/** criu pre-dump's own options besides dump's */
const PRE_DUMP_ARGS = {
  ...DUMP_ARGS,
  'pre-dump-mode': { type: 'string', description: 'splice (pages copied while the tree is frozen, written after) or read (copied after it runs again)' },
} as const;

/**
 * `criu pre-dump -t PID -D DIR [--prev-images-dir ../PREV] [--pre-dump-mode splice|read]`:
 * copy the tree's memory while it keeps running, and track what it writes from then on, for
 * a later (pre-)dump with --prev-images-dir to write only that. The tree is always left running.
 */
export const preDumpCommand = defineCommand({
  meta: { name: 'pre-dump', description: 'pre-dump task(s) minimizing their frozen time' },
  args: { ...PRE_DUMP_ARGS, ...COMMON_ARGS, ...notYetArgs({ ...PRE_DUMP_ARGS, ...COMMON_ARGS }) },
  async run({ args, rawArgs }) {
    refuseNotYet(args, { ...PRE_DUMP_ARGS, ...COMMON_ARGS });
    applyCommonOptions(args, rawArgs);
    const pid = Number(args.tree);
    if (!/^\d+$/.test(String(args.tree)) || pid <= 1) {
      throw new CrtoolsError('BAD_PID', `invalid argument for -t: ${args.tree}`, { exitCode: ExitCode.USAGE });
    }
    const mode = args['pre-dump-mode'] === undefined ? 'splice' : String(args['pre-dump-mode']);
    if (mode !== 'splice' && mode !== 'read') {
      throw new CrtoolsError('USAGE', `invalid argument for --pre-dump-mode: ${mode} (splice or read)`, { exitCode: ExitCode.USAGE });
    }
    const interrupt = interruptible();
    try {
      // as CRIU: a pre-dump always tracks memory and leaves the tree running
      const base = dumpOptionsFromArgs(args, rawArgs);
      const r = await preDump({ ...base, pid, track_mem: true, leave_running: false, leave_stopped: false, notify_scripts: false, pre_dump_mode: mode }, { signal: interrupt.signal, stderr: (l) => process.stderr.write(l + '\n') });
      if (args['display-stats']) process.stdout.write(dumpStatsText(r.stats));
    } finally {
      interrupt.release();
    }
    return ExitCode.OK;
  },
});
