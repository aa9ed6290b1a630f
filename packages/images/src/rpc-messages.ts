/**
 * CRIU's RPC messages (rpc.proto) as the packets that carry them: one criu_resp per
 * SOCK_SEQPACKET packet. Here, not in @crtools/rpc, because a restore needs one too: an RPC
 * client that dumped itself reads the answer to its DUMP from the socket it is restored with.
 */
import { encodeMessage } from './codec.js';
import { messageSpec } from './schema.js';

/** A criu_resp (its fields as rpc.proto names them; enums by name) as the packet's bytes. */
export function encodeCriuResp(resp: Record<string, unknown>): Buffer {
  return encodeMessage(messageSpec('criu_resp'), resp);
}

/**
 * What a client that dumped itself reads once restored (CRIU's answer on its USK_SERVICE
 * socket): a DUMP that succeeded, and `restored: true`.
 */
export function restoredDumpAnswer(): Buffer {
  return encodeCriuResp({ type: 'DUMP', success: true, dump: { restored: true } });
}
