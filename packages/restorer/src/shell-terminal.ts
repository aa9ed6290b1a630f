/**
 * --shell-job: the pty slave whose master was outside the tree (the terminal of the shell the
 * job ran under) is a terminal of the restore's. CRIU 4.2 hands its own standard input to every
 * descriptor of that slave (tty.c: the unpaired slave is "inherited", and refused when standard
 * input is not a terminal), sets the recorded termios and window size on it, and gives it to no
 * session: a root that led its own session (CRIU's test/others/shell-job/run.py makes one) comes
 * back leading a new session with no controlling terminal.
 *
 * crtools does the same for a job that did not lead its session (it joins the restore's, whose
 * terminal its standard input is). A root that led its own session with that terminal gets the
 * restore's controlling terminal back as its own (and as the descriptors it had on the slave),
 * its foreground group as recorded: the terminal of the session the restore runs in, which the
 * restored session takes from it (TIOCSCTTY's steal: a terminal is one session's). Without a
 * controlling terminal, the restore's standard input if it is a terminal (then made the root's
 * only if it is no session's). The restore's session is left without its terminal: run such a
 * restore from a session made for it (as run.py does), not from an interactive shell's.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, statSync } from 'node:fs';
import { decodeDev } from '@crtools/images/facts';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { readStat } from '@crtools/procfs';
import type { RestorePlan } from './plan.js';

export interface ShellTerminal {
  plan: RestorePlan;
  /** the descriptor opened here for it (the restore's /dev/tty), closed once the restore is over */
  close(): void;
}

const refuse = (message: string) => new CrtoolsError('RESTORE_SHELL_JOB', `--shell-job: ${message}`, { exitCode: ExitCode.FAILED });

const isatty = (fd: number) => process.getBuiltinModule('node:tty').isatty(fd);

/** This process's controlling terminal (stat's tty_nr), 0: none. */
function ownTerminal(): number {
  return readStat(process.pid).ttyNr;
}

/** The plan with the restore's terminal at the descriptors of the shell's (InheritFilePlan.shellTerminal). */
export function shellTerminal(plan: RestorePlan, opts: { ownTty?: () => number; stdinIsTty?: () => boolean } = {}): ShellTerminal {
  const first = plan.files.find((f) => f.kind === 'inherit' && f.shellTerminal !== undefined);
  if (!first || first.kind !== 'inherit') return { plan, close: () => undefined };
  const index = first.shellTerminal!;
  const stdinIsTty = opts.stdinIsTty ?? (() => isatty(0));
  const sid = first.tty?.ctty?.sid;
  const leader = sid !== undefined && plan.tasks.some((t) => t.pid === sid && t.sid === sid && !t.zombie);
  if (!leader) {
    // a job of the restore's session: its standard input, as in CRIU; the session's terminal is
    // the restore's already
    if (!stdinIsTty()) throw refuse(`/dev/pts/${index} was a terminal outside the tree, to be criu's standard input, which is not a terminal`);
    return { plan: withShellTerminal(plan, 0, (tty) => { const { ctty: _, ...rest } = tty; return rest; }), close: () => undefined };
  }
  if (sid !== plan.tasks[0]!.pid) throw refuse(`/dev/pts/${index}, a terminal outside the tree, is the controlling terminal of session ${sid}, which the root does not lead`);
  const tty = (opts.ownTty ?? ownTerminal)();
  if (tty !== 0) {
    const fd = openTerminal(tty);
    if (fd < 0) {
      const { major, minor } = decodeDev(tty);
      throw refuse(`the root led its session with /dev/pts/${index}, a terminal outside the tree, and the restore's controlling terminal (${major}:${minor}) is not found under /dev/pts or /dev`);
    }
    return { plan: withShellTerminal(plan, fd, (tty) => ({ ...tty, steal: true })), close: () => closeSync(fd) };
  }
  if (!stdinIsTty()) throw refuse(`the root led its session with /dev/pts/${index}, a terminal outside the tree, and the restore has no terminal to give it (no controlling terminal; standard input is not a terminal)`);
  return { plan: withShellTerminal(plan, 0, (tty) => tty), close: () => undefined };
}

/**
 * The device node of terminal `rdev` (stat's tty_nr), opened without becoming this process's
 * terminal: /dev/pts/N for a pty slave, else the first character device of /dev that is it; -1
 * when none is (not /dev/tty: the descriptors restored are on the terminal's own node, as they were).
 */
function openTerminal(rdev: number): number {
  const { major, minor } = decodeDev(rdev);
  const names = major >= PTS_MAJOR && major < PTS_MAJOR + 8 ? [`/dev/pts/${(major - PTS_MAJOR) * 256 + minor}`] : readdirSync('/dev').map((n) => `/dev/${n}`);
  for (const path of names) {
    try {
      const st = statSync(path);
      if (!st.isCharacterDevice() || st.rdev !== rdev || path === '/dev/tty') continue;
      const fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
      if (fstatSync(fd).rdev === rdev) return fd;
      closeSync(fd);
    } catch {
      /* not this one */
    }
  }
  return -1;
}

/** the first of the eight majors of Unix98 pty slaves (/dev/pts/N) */
const PTS_MAJOR = 136;

type InheritTty = NonNullable<Extract<RestorePlan['files'][number], { kind: 'inherit' }>['tty']>;

/** Every descriptor of the shell's terminal: descriptor fd of the restore, its settings as `tty` makes them. */
function withShellTerminal(plan: RestorePlan, fd: number, tty: (t: InheritTty) => InheritTty): RestorePlan {
  return {
    ...plan,
    files: plan.files.map((f) => (f.kind === 'inherit' && f.shellTerminal !== undefined ? { ...f, inheritFd: fd, ...(f.tty ? { tty: tty(f.tty) } : {}) } : f)),
  };
}
