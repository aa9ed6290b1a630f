/**
 * criu.8's options that every command takes and that act on crtools itself rather than on
 * the checkpoint: --close, -L/--libdir, --status-fd, --log-pid.
 */
import { closeSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { repeatedOption } from './flags.js';

export const COMMON_ARGS = {
  close: { type: 'string', description: 'close this descriptor, inherited from the caller, before anything else; repeatable' },
  // (--lib: getopt's abbreviation of --libdir, which scripts write: CRIU's test/others/unix-callback)
  libdir: { type: 'string', alias: ['L', 'lib'] as string[], description: 'the plugins directory: crtools loads no CRIU plugin, and refuses by name one found there' },
  'status-fd': { type: 'string', description: "write '\\0' to this descriptor and close it once ready (page-server, lazy-pages, service; dump and restore, as CRIU's, do not use it)" },
  'skip-file-rwx-check': { type: 'boolean', description: "restore: a file's rwx bits may differ from the mode the dump recorded (its type and other bits may not)" },
  'log-pid': { type: 'boolean', description: 'one log file per process (FILE.PID): crtools works from one process, so its one log holds everything' },
} as const;

/** A descriptor value of criu.8 (--close, --status-fd): a non-negative integer. */
export function parseFdOption(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new CrtoolsError('USAGE', `invalid argument for --${name}: ${v}`, { exitCode: ExitCode.USAGE });
  return Number(v);
}

/** What each open descriptor of this process is (readlink of /proc/self/fd/N). */
function ownLinks(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      /* the directory's own descriptor, gone already */
    }
  }
  return out;
}

/**
 * --close FD: close a descriptor the caller let crtools inherit (so that, say, the reader of a
 * pipe whose write end it passed sees the end of it while a restore goes on). As CRIU's
 * close(2), a descriptor that is not open is no error. Node marks inherited descriptors
 * close-on-exec like its own, so its own are told by what they are: its event loop's
 * anonymous inodes (epoll, eventfd) and the pipes whose both ends it holds; those stay open
 * whatever is asked (closing one would stop crtools, not the caller's file). Returns the
 * descriptors closed.
 */
export function closeInherited(fds: number[], links: Map<number, string> = ownLinks(), close: (fd: number) => void = closeSync): number[] {
  const count = new Map<string, number>();
  for (const l of links.values()) count.set(l, (count.get(l) ?? 0) + 1);
  const closed: number[] = [];
  for (const fd of fds) {
    const l = links.get(fd);
    if (l === undefined) continue; // not open
    if (fd > 2 && (l.startsWith('anon_inode:') || (l.startsWith('pipe:') && count.get(l)! > 1))) continue;
    close(fd);
    closed.push(fd);
  }
  return closed;
}

/**
 * -L/--libdir DIR (or CRIU_LIBS_DIR): where CRIU loads its plugins from (every `*.so`). crtools
 * has no plugin loader: a plugin there would be skipped, so it is refused by name (exit 4). A
 * directory that cannot be read is an error, as in CRIU. Without either, CRIU's default
 * directory is not looked at: its plugins act only on devices crtools refuses at dump anyway.
 */
export function refusePlugins(libdir: string | undefined, env: NodeJS.ProcessEnv = process.env, list = (d: string) => readdirSync(d)): void {
  const dir = libdir ?? env['CRIU_LIBS_DIR'];
  if (dir === undefined) return;
  let names: string[];
  try {
    names = list(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CrtoolsError('LIBDIR', `unable to open the plugins directory ${dir}: ${code}`, { exitCode: ExitCode.FAILED, context: { path: dir } });
  }
  const plugin = names.filter((n) => n.length >= 3 && n.endsWith('.so')).sort()[0];
  if (plugin !== undefined) {
    throw new CrtoolsError('UNSUPPORTED_PLUGIN', `plugin ${join(dir, plugin)} is not supported: crtools loads no CRIU plugins`, { exitCode: ExitCode.UNSUPPORTED, context: { path: join(dir, plugin) } });
  }
}

export interface CommonOptions {
  /** --status-fd, when given */
  statusFd?: number;
  /** --log-pid */
  logPid: boolean;
}

/**
 * Carry out the common options and return what is left for the command. `plugins`: the command
 * is one CRIU loads its plugins for (dump, restore, pre-dump).
 */
export function applyCommonOptions(args: Record<string, unknown>, rawArgs: string[], plugins = true): CommonOptions {
  closeInherited(repeatedOption(rawArgs, '--close').map((v) => parseFdOption('close', v)));
  if (plugins) refusePlugins(args['libdir'] === undefined ? undefined : String(args['libdir']));
  const statusFd = args['status-fd'] === undefined ? undefined : parseFdOption('status-fd', String(args['status-fd']));
  return { ...(statusFd !== undefined ? { statusFd } : {}), logPid: !!args['log-pid'] };
}
