/**
 * The server side of CRIU's RPC on one connection: a criu_req per packet, a criu_resp per
 * answer (NOTIFY answers in between when the client asked for notifications). `criu swrk FD`
 * serves the connection it inherited on FD; `criu service` one per accepted client.
 */
import { closeSync, fstatSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { Kerndat } from '@crtools/kerndat';
import { SeqpacketSocket } from '@crtools/sys';
import { handleCheck, handleCpuinfo, handleDump, handleFeatureCheck, handlePageServer, handlePreDump, handleRestore, handleUnsupported, handleVersion, handleWaitPid, type HandlerContext, type StartPageServer } from './handlers.js';
import type { Peer } from './access.js';
import { EBADRQC } from './failure.js';
import type { ConfigReader } from './options.js';
import { decodeRequest, encodeResponse, type CriuReq, type CriuResp } from './protocol.js';

export interface ServeOptions {
  /** criu swrk (the default): the peer is the client that started us; rst_sibling and inherit_fd allowed */
  swrk?: boolean;
  /** where the log of a request asking log_to_stderr goes (default: this process's stderr) */
  stderr?: (line: string) => void;
  /** reads criu_opts.config_file (the cli's configuration parser); without it config_file is refused */
  config?: ConfigReader;
  /** the kernel facts for CHECK (default: the kerndat cache) */
  kerndat?: () => Kerndat;
  /** starts a page server in a process of its own, for PAGE_SERVER / PAGE_SERVER_CHLD (the cli's) */
  startPageServer?: StartPageServer;
  /** the client, when SO_PEERCRED's is not the one (tests) */
  peer?: Peer;
  /** told of each request and answer (a debug trace) */
  trace?: (dir: 'in' | 'out', msg: CriuReq | CriuResp) => void;
}

/** How a connection ended. */
export interface ServeResult {
  /** requests answered */
  requests: number;
  /** the last answer's success (false too when the client left without asking anything) */
  success: boolean;
}

/** The client went away while we waited for it. */
function gone(what: string): CrtoolsError {
  return new CrtoolsError('RPC_CLIENT_GONE', `the RPC client closed the connection ${what}`, { exitCode: ExitCode.FAILED });
}

/**
 * Serve requests on a connected SOCK_SEQPACKET socket until an answered request did not ask
 * keep_open, or the client closes. Every request gets an answer, failures included; only a
 * connection that cannot carry one ends the loop early.
 */
export async function serveConnection(sock: SeqpacketSocket, opts: ServeOptions = {}): Promise<ServeResult> {
  const peer = opts.peer ?? sock.peer();
  const send = (resp: CriuResp) => {
    opts.trace?.('out', resp);
    sock.send(encodeResponse(resp));
  };
  // a packet's data; descriptors a client passes along are not asked for and are closed
  const receive = async () => {
    const p = await sock.receive();
    for (const fd of p?.fds ?? []) closeSync(fd);
    return p;
  };
  const skIno = serviceSkIno(sock);
  const ctx: HandlerContext = {
    peer,
    swrk: opts.swrk ?? true,
    ...(skIno !== undefined ? { serviceSkIno: skIno } : {}),
    stderr: opts.stderr ?? ((l) => process.stderr.write(l + '\n')),
    config: opts.config,
    kerndat: opts.kerndat,
    ...(opts.startPageServer ? { startPageServer: opts.startPageServer } : {}),
    async notify(script, pid) {
      try {
        send({ type: 'NOTIFY', success: true, notify: pid === undefined ? { script } : { script, pid } });
      } catch {
        return undefined; // the client is gone: the operation fails
      }
      const p = await receive();
      if (!p) return undefined;
      let answer: CriuReq;
      try {
        answer = decodeRequest(p.data);
      } catch {
        return undefined;
      }
      opts.trace?.('in', answer);
      return answer.type === 'NOTIFY' && answer.notify_success === true ? answer : undefined;
    },
  };
  let requests = 0;
  let success = false;
  // after a PRE_DUMP, as CRIU's loop: the connection stays, for more PRE_DUMPs then the DUMP
  let preDumping = false;
  for (;;) {
    const p = await receive();
    if (!p) {
      if (requests === 0) throw gone('before sending a request');
      return { requests, success };
    }
    let req: CriuReq;
    let resp: CriuResp | null | undefined;
    try {
      req = decodeRequest(p.data);
      opts.trace?.('in', req);
    } catch (e) {
      // a packet that is no criu_req: answered as CRIU answers what it cannot serve, and the
      // connection ends (it could not ask for keep_open)
      req = { type: 'EMPTY' };
      resp = { type: 'EMPTY', success: false, cr_errno: EBADRQC, cr_errmsg: e instanceof Error ? e.message : String(e) };
    }
    if (!resp && preDumping && req.type !== 'PRE_DUMP' && req.type !== 'DUMP') {
      resp = { type: typeof req.type === 'number' ? 'EMPTY' : req.type, success: false, cr_errno: EBADRQC, cr_errmsg: `Bad req seq: ${String(req.type)} after PRE_DUMP (only PRE_DUMP or DUMP)` };
      req = { ...req, keep_open: false };
    }
    try {
      resp ??= await dispatch(req, ctx);
    } catch (e) {
      // (handlers answer failures themselves: this is a fault of ours, still answered)
      resp = { type: typeof req.type === 'number' ? 'EMPTY' : req.type, success: false, cr_errmsg: e instanceof Error ? e.message : String(e) };
    }
    requests++;
    if (resp === null) {
      // a self-dump that killed its client: no answer (the restored client reads its own)
      return { requests, success: true };
    }
    success = resp.success;
    try {
      send(resp);
    } catch (e) {
      throw new CrtoolsError('RPC_CLIENT_GONE', `cannot answer the RPC client: ${e instanceof Error ? e.message : String(e)}`, { exitCode: ExitCode.FAILED, cause: e });
    }
    preDumping = req.type === 'PRE_DUMP' && resp.success;
    if (!req.keep_open && !preDumping) return { requests, success };
  }
}

/** The inode of our end of the connection (fstat), as CRIU's service_sk_ino; undefined when it has none. */
function serviceSkIno(sock: SeqpacketSocket): number | undefined {
  try {
    return fstatSync(sock.fd).ino;
  } catch {
    return undefined;
  }
}

/** The answer to a request; null: none is sent (see handleDump). */
async function dispatch(req: CriuReq, ctx: HandlerContext): Promise<CriuResp | null> {
  switch (req.type) {
    case 'VERSION':
      return handleVersion();
    case 'FEATURE_CHECK':
      return handleFeatureCheck(req, ctx);
    case 'PRE_DUMP':
    case 'SINGLE_PRE_DUMP':
      return handlePreDump(req, ctx);
    case 'PAGE_SERVER':
    case 'PAGE_SERVER_CHLD':
      return handlePageServer(req, ctx);
    case 'CHECK':
      return handleCheck(req, ctx);
    case 'DUMP':
      return handleDump(req, ctx);
    case 'RESTORE':
      return handleRestore(req, ctx);
    case 'CPUINFO_DUMP':
    case 'CPUINFO_CHECK':
      return handleCpuinfo(req, ctx);
    case 'WAIT_PID':
      return handleWaitPid(req);
    default:
      return handleUnsupported(req);
  }
}

/**
 * `criu swrk FD`: serve the client at the other end of the inherited SOCK_SEQPACKET socket FD
 * (its creator, by SO_PEERCRED), then close it. Resolves to an exit code: 0 when the last
 * request succeeded, 1 otherwise.
 */
export async function serveSwrk(fd: number, opts: ServeOptions = {}): Promise<number> {
  const sock = new SeqpacketSocket(fd);
  try {
    if (opts.peer === undefined) {
      try {
        sock.peer();
      } catch (e) {
        throw new CrtoolsError('RPC_BAD_SOCKET', `descriptor ${fd} is not a connected socket (${(e as NodeJS.ErrnoException).code}): criu swrk serves the socket its client passed`, { exitCode: ExitCode.USAGE, cause: e });
      }
    }
    const r = await serveConnection(sock, { swrk: true, ...opts });
    return r.success ? ExitCode.OK : ExitCode.FAILED;
  } finally {
    sock.close();
  }
}
