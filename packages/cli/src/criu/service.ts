import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { defineCommand } from 'citty';
import { CriuLog, CrtoolsError, ExitCode } from '@crtools/common';
import { DEFAULT_SERVICE_ADDRESS, inheritedService, listenService, runService, spareChannel, type SpareChannel } from '@crtools/rpc';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { verbosityOf } from './flags.js';
import { statusReady } from './page-server.js';

/** Set in a worker's environment: `criu swrk` then serves a service client (not its parent). */
export const SERVICE_WORKER_ENV = 'CRTOOLS_RPC_SERVICE_WORKER';
/** Set for a worker started ahead of its client: descriptor N brings the connection (SCM_RIGHTS). */
export const SPARE_WORKER_ENV = 'CRTOOLS_RPC_SERVICE_SPARE';
/** Set by `criu service -d` for the detached copy: the listening socket it inherits. */
const LISTEN_FD_ENV = 'CRTOOLS_RPC_SERVICE_LISTEN_FD';

/**
 * `criu service [--address PATH] [-d] [--pidfile FILE] [-W DIR] [-o LOG -vN] [--status-fd FD]`:
 * serve RPC clients that connect to a SOCK_SEQPACKET socket at PATH, each by a `criu swrk`
 * worker of its own (in service mode: the peer is the connecting client; rst_sibling and
 * inherit_fd are refused; a client that is not root may dump and restore only its own
 * processes). As CRIU, the service works in its work directory (-W, else -D, else the current
 * one): PATH, the pidfile and the log are relative to it. -d: detach once listening;
 * --status-fd: '\\0' written there once clients can connect (after the pidfile).
 */
export const serviceCommand = defineCommand({
  meta: { name: 'service', description: 'launch service: serve RPC clients on a unix socket (--address), a worker per client' },
  args: {
    address: { type: 'string', description: `the socket to listen on (default ${DEFAULT_SERVICE_ADDRESS})` },
    daemon: { type: 'boolean', alias: 'd', default: false, description: 'detach once listening' },
    pidfile: { type: 'string', description: "write the service's pid to this file (relative to the work dir)" },
    'images-dir': { type: 'string', alias: 'D', description: 'the work directory when -W is not given' },
    'work-dir': { type: 'string', alias: 'W', description: 'directory the service works in: the socket path, the pidfile and the log are relative to it (default: -D, else the current directory)' },
    'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
    verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
    ...COMMON_ARGS,
  },
  async run({ args, rawArgs }) {
    const address = args.address ?? DEFAULT_SERVICE_ADDRESS;
    const inherited = process.env[LISTEN_FD_ENV];
    delete process.env[LISTEN_FD_ENV];
    // (the detached copy inherits the directory the first one went to)
    if (inherited === undefined) {
      const common = applyCommonOptions(args, rawArgs, false);
      const workDir = String(args['work-dir'] ?? args['images-dir'] ?? '.');
      try {
        process.chdir(workDir);
      } catch (e) {
        throw new CrtoolsError('WORK_DIR', `can't change directory to ${workDir}: ${(e as NodeJS.ErrnoException).code ?? e}`, { exitCode: ExitCode.FAILED });
      }
      const log = serviceLog(args, rawArgs);
      const server = listenService(address);
      log.info(`The service socket is bound to ${address}`);
      let pid = process.pid;
      if (args.daemon) {
        // as CRIU's daemon(): the listening copy goes on in a new session, stdio on /dev/null
        const child = spawn(process.execPath, [process.argv[1]!, 'service', '--address', address], {
          detached: true,
          stdio: ['ignore', 'ignore', 'ignore', server.fd],
          env: { ...process.env, [LISTEN_FD_ENV]: '3' },
        });
        child.unref();
        pid = child.pid!;
      }
      if (args.pidfile) writeFileSync(String(args.pidfile), `${pid}`);
      statusReady(common.statusFd);
      log.close();
      if (args.daemon) return ExitCode.OK;
      return serve(server, address);
    }
    return serve(inheritedService(Number(inherited), address), address);
  },
});

/** The service's own log (-o, relative to the work dir it is in): where it listens, as CRIU's says. */
function serviceLog(args: Record<string, unknown>, rawArgs: string[]): CriuLog {
  const level = args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs);
  return new CriuLog(level, args['log-file'] ? String(args['log-file']) : undefined, (l) => process.stderr.write(l + '\n'));
}

/** Serve clients on `server` until SIGINT or SIGTERM; the socket file removed at the end. */
async function serve(server: ReturnType<typeof listenService>, address: string): Promise<number> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // workers are started ahead of their clients (Node and crtools loaded, prepared and
  // rehearsed, waiting for a connection), so that a client does not wait for a process to
  // start: two, for a client that sends its next request at once (a restore after its
  // dump); each one taken is replaced at once (at a low priority, see startSpare)
  const spares: Spare[] = [];
  const replenish = () => {
    while (spares.length < SPARES) spares.push(startSpare());
  };
  replenish();
  await runService(server, {
    signal: ac.signal,
    worker: (conn) => {
      const worker = spares.shift() ?? startSpare();
      worker.channel.give(conn);
      replenish();
    },
  });
  for (const s of spares.splice(0)) s.channel.dismiss();
  rmSync(address, { force: true });
  return ExitCode.OK;
}

/** Workers kept waiting for clients. */
const SPARES = 2;
/** The nice value a spare starts at (see startSpare). */
const SPARE_NICE = 10;

interface Spare {
  channel: SpareChannel;
}

/**
 * A worker in service mode whose descriptor 3 is a control socket: the first message on it
 * brings the client's connection (see swrk's SPARE_WORKER_ENV); the control socket closed
 * without one, it exits.
 */
function startSpare(): Spare {
  const channel = spareChannel();
  const child = spawn(process.execPath, [process.argv[1]!, 'swrk', '3'], {
    stdio: ['ignore', 'ignore', 'inherit', channel.workerFd],
    env: { ...process.env, [SERVICE_WORKER_ENV]: '1', [SPARE_WORKER_ENV]: '1' },
  });
  channel.closeWorkerEnd();
  child.unref();
  // it starts and prepares at a low priority, not to slow a worker serving a client meanwhile;
  // it takes back the normal one with its connection (which needs the right to raise it: root)
  if (child.pid !== undefined && process.getuid?.() === 0) {
    try {
      setPriority(child.pid, SPARE_NICE);
    } catch {
      /* gone already: its client will be handed to the next */
    }
  }
  return { channel };
}
