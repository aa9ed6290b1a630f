/**
 * criu.8's --external for a dump: of its forms only unix[INO] is carried (a socket of the tree,
 * by its inode, whose peer may stay outside the dumped tree); every other form (mnt, dev, file,
 * tty, net, pid...) is refused by name.
 */
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';

/** The socket inodes named unix[INO]; any other form refused (one refusal each) into `refusals`. */
export function unixExternals(values: readonly string[], refusals: Refusals): Set<number> {
  const out = new Set<number>();
  for (const v of values) {
    const m = /^unix\[(\d+)\]$/.exec(v);
    if (m) {
      out.add(Number(m[1]));
      continue;
    }
    refusals.refuse(new CrtoolsError('UNSUPPORTED_OPTION', `--external ${v} is not supported yet (only unix[INO] is; crtools issue 17)`, {
      context: { option: 'external', value: v }, exitCode: ExitCode.UNSUPPORTED,
    }));
  }
  return out;
}
