import { spawn } from 'node:child_process';
import { closeSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { defineCommand } from 'citty';
import { CriuLog, CrtoolsError, ExitCode } from '@crtools/common';
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
} as const;

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
    try {
      if (!statSync(dir).isDirectory()) throw new Error('ENOTDIR');
    } catch (e) {
      throw new CrtoolsError('PS_IMAGES_DIR', `can't open the images directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { exitCode: ExitCode.FAILED, context: { path: dir } });
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
        const child = spawn(process.execPath, [process.argv[1]!, ...argv], {
          detached: true,
          stdio: ['ignore', 'ignore', 'ignore', listener.fd],
          env: { ...process.env, [LISTEN_FD_ENV]: '3' },
        });
        child.unref();
        listener.close();
        if (args.pidfile) {
          try {
            writeFileSync(path.resolve(workDir, String(args.pidfile)), `${child.pid}`);
          } catch (e) {
            if (child.pid) process.kill(child.pid, 'SIGKILL');
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
        const r = await servePageServer(sock, { dir, logger: log.logger('page-server') });
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
