/**
 * The payloads after SysV IPC entries (see magic.ts): a semaphore set's values (u16 each, the
 * whole rounded up to 8 bytes) and a message queue's messages (each a u32 length, an ipc_msg
 * and its text rounded up to 8 bytes), built and read in one place.
 */
import { decodeMessage, encodeMessage } from './codec.js';
import { messageSpec } from './schema.js';

const round8 = (x: number) => Math.ceil(x / 8) * 8;

/** The payload of an ipc_sem_entry holding these values. */
export function semPayload(values: readonly number[]): Buffer {
  const out = Buffer.alloc(round8(values.length * 2));
  values.forEach((v, i) => out.writeUInt16LE(v, 2 * i));
  return out;
}

/** The nsems values of an ipc_sem_entry's payload. */
export function semValues(extra: Buffer, nsems: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < nsems && 2 * i + 1 < extra.length; i++) out.push(extra.readUInt16LE(2 * i));
  return out;
}

/** One queued message: its ipc_msg fields (as given to encodeMessage) and its text. */
export interface QueuedMessage {
  msg: Record<string, unknown>;
  data: Buffer;
}

/** The payload of an ipc_msg_entry holding these messages (data beyond msize is not kept). */
export function msgPayload(msgs: readonly QueuedMessage[], path = 'extra'): Buffer {
  const spec = messageSpec('ipc_msg');
  const parts: Buffer[] = [];
  msgs.forEach((m, i) => {
    const body = encodeMessage(spec, m.msg, `${path}[${i}]`);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length);
    const msize = Number(m.msg['msize']);
    const padded = Buffer.alloc(round8(msize));
    m.data.copy(padded, 0, 0, msize);
    parts.push(len, body, padded);
  });
  return Buffer.concat(parts);
}

/** The messages of an ipc_msg_entry's payload, in queue order. */
export function msgsOfPayload(extra: Buffer): QueuedMessage[] {
  const spec = messageSpec('ipc_msg');
  const out: QueuedMessage[] = [];
  let p = 0;
  while (p + 4 <= extra.length) {
    const len = extra.readUInt32LE(p);
    const msg = decodeMessage(spec, extra, p + 4, p + 4 + len);
    const msize = Number(msg['msize']);
    out.push({ msg, data: extra.subarray(p + 4 + len, p + 4 + len + msize) });
    p += 4 + len + round8(msize);
  }
  return out;
}
