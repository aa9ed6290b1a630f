/**
 * Payloads written from elsewhere: an entry whose payload is too big to hold (a ghost file's
 * chunk, up to --ghost-limit) names where its bytes come from, and the writer copies them
 * after the entry in bounded pieces.
 */
import { readSync } from 'node:fs';

const BRAND = Symbol.for('crtools.images.payload');

/** `length` bytes, handed out in pieces (each piece is written before the next is asked for). */
export interface PayloadSource {
  readonly [BRAND]: true;
  readonly length: number;
  pieces(): Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

export function isPayloadSource(x: unknown): x is PayloadSource {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[BRAND] === true;
}

/** A payload of `length` bytes made by `pieces` (the writer checks the count). */
export function payloadSource(length: number, pieces: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>): PayloadSource {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`payload length ${length}`);
  return { [BRAND]: true, length, pieces };
}

/** Default piece size of filePayload. */
export const PAYLOAD_PIECE = 1 << 20;

/**
 * The bytes [position, position + length) of the open file `fd`, read when written, at most
 * `piece` bytes at a time. A file that ends early is an error (the image would be short).
 */
export function filePayload(fd: number, position: number, length: number, piece = PAYLOAD_PIECE): PayloadSource {
  return payloadSource(length, function* () {
    let done = 0;
    while (done < length) {
      const n = Math.min(piece, length - done);
      const b = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const r = readSync(fd, b, got, n - got, position + done + got);
        if (r === 0) throw new Error(`the file ends at ${position + done + got}, before the ${length} bytes at ${position} were read`);
        got += r;
      }
      done += n;
      yield b;
    }
  });
}
