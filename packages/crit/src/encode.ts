import type { Writable } from 'node:stream';
import { ExitCode } from '@crtools/common';
import { createCritEncoder, JsonSyntaxError, readImageDocument } from './_images.js';
import { inputName, readAll, stdinInput, type Input } from './io.js';
import { badInput } from './errors.js';
import { withOutput } from './decode.js';

export interface EncodeOptions {
  /** Name of the input in messages. */
  name?: string;
}

/** Byte offset in a UTF-8 buffer of the UTF-16 index `i` of its decoded text. */
function byteOffset(text: string, i: number): number {
  return Buffer.byteLength(text.slice(0, i));
}

/** The input as text, refusing binary data and invalid UTF-8 (the bytes are dropped on return). */
async function readJsonText(input: Input, name: string): Promise<string> {
  const buf = await readAll(input);
  // an image (binary) given to encode: say so rather than "bad JSON at byte 0"
  const firstNonWs = buf.findIndex((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (firstNonWs >= 0 && buf[firstNonWs] !== 0x7b && (buf[firstNonWs]! < 0x20 || buf[firstNonWs]! >= 0x7f)) {
    throw badInput('CRIT_BAD_JSON', name, firstNonWs, 'not JSON (binary data: is this an image? encode expects JSON from crit decode)');
  }
  const text = buf.toString('utf8');
  if (text.includes('\ufffd') && !buf.includes(Buffer.from('\ufffd'))) {
    const at = text.indexOf('\ufffd');
    throw badInput('CRIT_BAD_JSON', name, byteOffset(text, at), 'not valid UTF-8 text');
  }
  return text;
}

/**
 * Encode crit's JSON (as `crit decode` writes it, pretty or not) into a binary image.
 * Returns the exit code; bad JSON is a BAD_INPUT error naming the byte offset (or the
 * entry and field that does not fit the schema).
 */
export async function encodeImage(input: Input, output: Writable, opts: EncodeOptions = {}): Promise<number> {
  const name = opts.name ?? inputName(input);
  const text = await readJsonText(input, name);
  // entries are parsed, converted and written a batch at a time
  const enc = createCritEncoder(output, name);
  try {
    await readImageDocument(text, { magic: (m) => enc.magic(m), entry: (e, i) => enc.entry(e, i) });
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw badInput('CRIT_BAD_JSON', name, byteOffset(text, e.index), `invalid JSON: ${e.message}`, e);
    throw e;
  }
  await enc.close();
  return ExitCode.OK;
}
