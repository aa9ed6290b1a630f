/**
 * criu.8's --external for a dump. Carried: unix[INO] (a socket of the tree, by its inode, whose
 * peer may stay outside the dumped tree), tty[RDEV:DEV] (a terminal, by its device and its
 * filesystem's in hex, whose other end stays outside: written as an external terminal for the
 * restore to take from --inherit-fd fd[N]:tty[RDEV:DEV], as runc does for a container's console)
 * and net[INO]:KEY (the tree's network namespace, by its
 * inode, is the caller's: not dumped, written as KEY for the restore to join the namespace the
 * caller passes with --inherit-fd fd[N]:KEY, as runc and podman do). mnt[KEY]:VAL comes as
 * ext_mnt (mounts.ts). Every other form (dev, file, pid...) is refused by name.
 */
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';

export interface DumpExternals {
  /** socket inodes named unix[INO] */
  unix: Set<number>;
  /** network namespace inode → the key written for it (net[INO]:KEY) */
  net: Map<number, string>;
  /** terminals named tty[RDEV:DEV], as "rdev:dev" (hex, no leading zeros) */
  tty: Set<string>;
}

/** The --external values a dump carries; any other form refused (one refusal each) into `refusals`. */
export function dumpExternals(values: readonly string[], refusals: Refusals): DumpExternals {
  const out: DumpExternals = { unix: new Set(), net: new Map(), tty: new Set() };
  for (const v of values) {
    const unix = /^unix\[(\d+)\]$/.exec(v);
    if (unix) {
      out.unix.add(Number(unix[1]));
      continue;
    }
    const net = /^net\[(\d+)\]:(.+)$/.exec(v);
    if (net) {
      out.net.set(Number(net[1]), net[2]!);
      continue;
    }
    const tty = /^tty\[([0-9a-fA-F]+):([0-9a-fA-F]+)\]$/.exec(v);
    if (tty) {
      out.tty.add(`${BigInt(`0x${tty[1]}`).toString(16)}:${BigInt(`0x${tty[2]}`).toString(16)}`);
      continue;
    }
    refusals.refuse(new CrtoolsError('UNSUPPORTED_OPTION', `--external ${v} is not supported yet (only unix[INO], tty[RDEV:DEV], net[INO]:KEY, mnt[KEY]:VAL and mnt[][:m|:s] are; crtools issue 17)`, {
      context: { option: 'external', value: v }, exitCode: ExitCode.UNSUPPORTED,
    }));
  }
  return out;
}
