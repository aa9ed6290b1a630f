/**
 * The wire: one protobuf message per SOCK_SEQPACKET packet, criu_req from the client and
 * criu_resp from criu (rpc.proto in @crtools/images, encoded and decoded by its codec).
 */
import { decodeMessage, encodeCriuResp, encodeMessage, messageSpec } from '@crtools/images';
import type { CriuOpts, CriuReq, CriuResp } from '@crtools/images/types';
import { CrtoolsError, ExitCode } from '@crtools/common';

export type { CriuOpts, CriuReq, CriuResp };
export type { CriuFeatures, CriuNotify, CriuVersion, CriuDumpResp, CriuRestoreResp } from '@crtools/images/types';

/** criu_req_type by name. */
export type RequestType = Exclude<CriuReq['type'], number>;

function decode<T>(name: string, what: string, buf: Buffer): T {
  try {
    return decodeMessage(messageSpec(name), buf) as unknown as T;
  } catch (e) {
    throw new CrtoolsError('RPC_BAD_MESSAGE', `malformed ${what}: ${e instanceof Error ? e.message : String(e)}`, { exitCode: ExitCode.BAD_INPUT, cause: e });
  }
}

/** A criu_req from its packet; RPC_BAD_MESSAGE when it is not one. */
export function decodeRequest(buf: Buffer): CriuReq {
  return decode<CriuReq>('criu_req', 'request', buf);
}

/** A criu_resp from its packet; RPC_BAD_MESSAGE when it is not one. */
export function decodeResponse(buf: Buffer): CriuResp {
  return decode<CriuResp>('criu_resp', 'response', buf);
}

export function encodeRequest(req: CriuReq): Buffer {
  return encodeMessage(messageSpec('criu_req'), req as unknown as Record<string, unknown>);
}

export function encodeResponse(resp: CriuResp): Buffer {
  return encodeCriuResp(resp as unknown as Record<string, unknown>);
}

/** The name of a request type as a client may send it (an unknown number as its number). */
export function typeName(t: CriuReq['type']): string {
  return typeof t === 'number' ? `request type ${t}` : t;
}
