import { spawn } from 'node:child_process';
import { closeSync, existsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { defineCommand } from 'citty';
import { CriuLog, CrtoolsError, ExitCode } from '@crtools/common';
import { linkParent } from '@crtools/dump';
import { listenPageServer, parsePort, servePageServer } from '@crtools/pagemap';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { verbosityOf } from './flags.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';

/** Set for the copy `--daemon` detaches: the listening socket it inherits as descriptor 3. */
const LISTEN_FD_ENV = 'CRTOOLS_PAGE_SERVER_LISTEN_FD';

export const PAGE_SERVER_ARGS = {
  'images-dir': { type: 'string', alias: 'D', description: 'directory the received pagemap and pages images are written to', default: '.' },
  'work-dir': { type: 'string', alias: 'W', description: 'directory for the log and the pidfile (default: the images directory)' },
  'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
  address: { type: 'string', description: 'IPv4 or IPv6 address to listen on (default: any IPv4 address)' },
  port: { type: 'string', description: 'TCP port to listen on (default: one the kernel picks, logged as "Using N port")' },
  daemon: { type: 'boolean', alias: 'd', default: false, description: 'detach once listening' },
  pidfile: { type: 'string', description: "with --daemon: write the server's pid to this file (relative to the work dir)" },
  verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
  'prev-images-dir': { type: 'string', description: 'the previous round of an incremental dump, relative to the images dir: linked as `parent`, pages the dump leaves there are holes here' },
  'auto-dedup': { type: 'boolean', description: 'punch the pages received out of the parent images (--prev-images-dir) as they are written' },
} as const;

/** What a page server is started with (the command line, or an RPC PAGE_SERVER request). */
export interface PageServerStart {
  dir: string;
  address?: string | undefined;
  /** 0: one the kernel picks */
  port: number;
  prevImagesDir?: string | undefined;
  autoDedup?: boolean | undefined;
  workDir?: string | undefined;
  logFile?: string | undefined;
  logLevel: number;
  /** a new session, not our child to wait for (CRIU's daemon mode); else our child */
  detached: boolean;
}

/**
 * A page server serving in a process of its own, listening before this returns (clients may
 * connect at once): what `--daemon` does, and RPC's PAGE_SERVER (detached) and
 * PAGE_SERVER_CHLD (a child of the worker). Resolves with its pid and the port it listens on.
 */
export async function startPageServer(o: PageServerStart): Promise<{ pid: number; port: number }> {
  checkImagesDir(o.dir);
  if (o.prevImagesDir !== undefined) checkParentDir(o.dir, o.prevImagesDir);
  const listener = await listenPageServer({ address: o.address, port: o.port });
  try {
    const argv = ['page-server', '-D', o.dir, `--verbosity=${o.logLevel}`,
      ...(o.workDir ? ['-W', o.workDir] : []), ...(o.logFile ? ['-o', o.logFile] : []),
      ...(o.prevImagesDir !== undefined ? ['--prev-images-dir', o.prevImagesDir] : []), ...(o.autoDedup ? ['--auto-dedup'] : [])];
    const pid = spawnServing(listener.fd, argv, o.detached);
    return { pid, port: listener.port };
  } finally {
    listener.close();
  }
}

/** The copy that serves, on the listening socket `fd` (its descriptor 3). */
function spawnServing(fd: number, argv: string[], detached: boolean): number {
  const child = spawn(process.execPath, [process.argv[1]!, ...argv], {
    detached,
    stdio: ['ignore', 'ignore', 'ignore', fd],
    env: { ...process.env, [LISTEN_FD_ENV]: '3' },
  });
  child.unref();
  if (child.pid === undefined) throw new CrtoolsError('PS_START', 'the page server could not be started', { exitCode: ExitCode.FAILED });
  return child.pid;
}

function checkImagesDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('ENOTDIR');
  } catch (e) {
    throw new CrtoolsError('PS_IMAGES_DIR', `can't open the images directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { exitCode: ExitCode.FAILED, context: { path: dir } });
  }
}

/** --prev-images-dir as CRIU checks it: readable, relative to the images dir. */
function checkParentDir(dir: string, prev: string): void {
  if (!existsSync(path.resolve(dir, prev))) {
    throw new CrtoolsError('BAD_PARENT', `invalid parent image directory ${prev}: ${path.resolve(dir, prev)} does not exist`, { exitCode: ExitCode.BAD_INPUT, context: { path: prev } });
  }
}

/**
 * `criu page-server -D DIR [--address A] [--port P] [--daemon [--pidfile F]] [--status-fd FD]`:
 * receive one dump's pages (CRIU's page-server protocol, one TCP connection) into
 * pagemap-*.img / pages-*.img in DIR, then exit, as CRIU's page server does. All protocol logic
 * is in @crtools/pagemap; this parses flags, listens, detaches and logs.
 */
export const pageServerCommand = defineCommand({
  meta: { name: 'page-server', description: "launch page server: receive one dump's pages over TCP into the images directory" },
  args: { ...PAGE_SERVER_ARGS, ...COMMON_ARGS, ...notYetArgs({ ...PAGE_SERVER_ARGS, ...COMMON_ARGS }) },
  async run({ args, rawArgs }) {
    refuseNotYet(args, { ...PAGE_SERVER_ARGS, ...COMMON_ARGS });
    const common = applyCommonOptions(args, rawArgs, false);
    const port = args.port !== undefined ? parsePort(String(args.port)) : 0;
    const dir = String(args['images-dir']);
    checkImagesDir(dir);
    // as CRIU's open_image_dir: the parent snapshot linked before anything is received
    const prev = args['prev-images-dir'] !== undefined ? String(args['prev-images-dir']) : undefined;
    if (prev !== undefined) {
      checkParentDir(dir, prev);
      linkParent(dir, prev);
    }
    const workDir = args['work-dir'] ? String(args['work-dir']) : dir;
    const level = args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs);
    const log = new CriuLog(level, args['log-file'] ? path.resolve(workDir, String(args['log-file'])) : undefined, (l) => process.stderr.write(l + '\n'));
    const inherited = process.env[LISTEN_FD_ENV];
    delete process.env[LISTEN_FD_ENV];
    try {
      if (inherited === undefined) log.info(`Starting page server on port ${port}`);
      const listener = await listenPageServer({ address: args.address, port, ...(inherited !== undefined ? { fd: Number(inherited) } : {}) });
      if (port === 0 && inherited === undefined) log.info(`Using ${listener.port} port`);
      if (args.daemon && inherited === undefined) {
        // as CRIU's daemon(): the copy that serves goes on in a new session, stdio on
        // /dev/null, listening on the socket bound here (clients may connect as soon as we return)
        const argv = process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '-d');
        const childPid = spawnServing(listener.fd, argv, true);
        listener.close();
        if (args.pidfile) {
          try {
            writeFileSync(path.resolve(workDir, String(args.pidfile)), `${childPid}`);
          } catch (e) {
            process.kill(childPid, 'SIGKILL');
            throw new CrtoolsError('PIDFILE', `can't write the pidfile ${args.pidfile}: ${(e as NodeJS.ErrnoException).code ?? e}`, { exitCode: ExitCode.FAILED });
          }
        }
        statusReady(common.statusFd);
        return ExitCode.OK;
      }
      if (inherited === undefined) statusReady(common.statusFd);
      const sock = await listener.accept();
      log.info(`Accepted connection from ${sock.remoteAddress}:${sock.remotePort}`);
      // SIGINT/SIGTERM mid-session: the connection is dropped, the session fails and removes what it wrote
      const stop = () => sock.destroy();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const r = await servePageServer(sock, { dir, logger: log.logger('page-server'), ...(args['auto-dedup'] ? { autoDedup: true } : {}) });
        log.info(`Session over: ${r.pagemaps.length} pagemap(s) received`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        sock.destroy();
      }
      return ExitCode.OK;
    } catch (e) {
      log.error('page-server', (e as Error).message);
      throw e;
    } finally {
      log.close();
    }
  },
});

/** --status-fd: '\0' written and the descriptor closed once clients can connect. */
export function statusReady(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, Buffer.from([0]));
    closeSync(fd);
  } catch (e) {
    throw new CrtoolsError('STATUS_FD', `unable to write into the status fd ${fd}: ${(e as NodeJS.ErrnoException).code ?? e}`, { exitCode: ExitCode.FAILED });
  }
}
