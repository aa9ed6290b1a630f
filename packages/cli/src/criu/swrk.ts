import { appendFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { defineCommand } from 'citty';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { handedConnection, serveSwrk, type ServeOptions } from '@crtools/rpc';
import { startPageServer } from './page-server.js';
import { rpcConfigReader } from './rpc-config.js';
import { SERVICE_WORKER_ENV, SPARE_WORKER_ENV } from './service.js';

/**
 * `criu swrk FD`: serve the RPC client at the other end of the SOCK_SEQPACKET socket inherited
 * on FD (how pycriu, go-criu, runc and podman start criu). Not for people: a client starts it.
 */
/** Set to a file: each request and answer of the connection is appended to it as a JSON line (a debug trace). */
export const RPC_TRACE_ENV = 'CRTOOLS_RPC_TRACE';

/** The trace hook for CRTOOLS_RPC_TRACE: `{ time, pid, dir, msg }` per message, 64-bit numbers as strings. */
export function traceToFile(file: string): NonNullable<ServeOptions['trace']> {
  return (dir, msg) => {
    const line = JSON.stringify({ time: new Date().toISOString(), pid: process.pid, dir, msg }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    try {
      appendFileSync(file, line + '\n');
    } catch {
      // a trace that cannot be written must not fail the request
    }
  };
}

export const swrkCommand = defineCommand({
  meta: { name: 'swrk', description: 'serve one RPC client on an inherited socket (criu swrk FD, started by RPC clients)' },
  args: {
    fd: { type: 'positional', required: true, description: 'the inherited SOCK_SEQPACKET descriptor' },
  },
  async run({ args }) {
    if (!/^\d+$/.test(String(args.fd))) throw new CrtoolsError('USAGE', `Usage: criu swrk <fd> (not a descriptor: ${args.fd})`, { exitCode: ExitCode.USAGE });
    let fd: number | null = Number(args.fd);
    // a service worker started ahead of its client: the connection comes over fd
    if (process.env[SPARE_WORKER_ENV] === '1') {
      delete process.env[SPARE_WORKER_ENV];
      fd = await handedConnection(fd, { rehearse: true });
      if (fd === null) return (process.exitCode = ExitCode.OK); // the service stopped first
      // (a spare of a root service waited at a low priority: a client gets the normal one)
      try {
        if (getPriority() > 0) setPriority(0);
      } catch {
        /* not ours to raise: the service was not root and did not lower it */
      }
    }
    // (a worker of `criu service` serves the client that connected, not a parent of its own)
    const traceFile = process.env[RPC_TRACE_ENV];
    const code = await serveSwrk(fd, {
      config: rpcConfigReader,
      startPageServer,
      swrk: process.env[SERVICE_WORKER_ENV] !== '1',
      ...(traceFile ? { trace: traceToFile(traceFile) } : {}),
    });
    process.exitCode = code;
    return code;
  },
});
