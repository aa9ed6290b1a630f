import { createWriteStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { decodeNoPayload, decodeTo, pagesIdOf } from './_images.js';
import { pyDumps } from './pyjson.js';
import { describeRaw, rawKind } from './raw.js';
import { Sink } from './sink.js';
import { inputName, stdinInput, withFsErrors, type Input } from './io.js';
import { badInput, usage } from './errors.js';

export interface DecodeOptions {
  /** crit's --pretty: indented, with hex/flag/IP forms for annotated fields. */
  pretty?: boolean;
  /** crit show --nopl: payloads replaced by their size. */
  nopl?: boolean;
  /** Write a final newline (crit does when writing to stdout, not to a file). */
  newline?: boolean;
  /** Name of the input in messages (defaults to the path, or <stdin>). */
  name?: string;
}

/**
 * Decode a binary image into crit's JSON, streaming: entries are written one by one, so a
 * huge image never becomes one big string. Returns the exit code; throws CrtoolsErrors
 * (BAD_INPUT for malformed images, with the byte offset).
 */
export async function decodeImage(input: Input, output: Writable, opts: DecodeOptions = {}): Promise<number> {
  const name = opts.name ?? inputName(input);
  await refuseRaw(input);
  const sink = new Sink(output);
  const pretty = !!opts.pretty;
  await withFsErrors(name, async () => {
    if (opts.nopl) {
      const v = await decodeNoPayload(input, { pretty, name }, (n) => `... <${humanSize(n)}>`);
      await sink.write(pyDumps(v, pretty ? 4 : null));
    } else {
      await decodeTo(input, sink, { pretty, name });
    }
  });
  if (opts.newline) await sink.write('\n');
  await sink.flush();
  return ExitCode.OK;
}

/** Python crit's human_readable(): 0B, 512B, 4KB, 1.5KB, 2MB… */
export function humanSize(num: number): string {
  for (const unit of ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z']) {
    if (num < 1024) return Number.isInteger(num) ? `${num}${unit}B` : `${num.toFixed(1)}${unit}B`;
    num /= 1024;
  }
  return `${num.toFixed(1)}YB`;
}

/** A raw image (pages-N.img…) gets an explanation instead of a decode error. */
export async function refuseRaw(input: Input): Promise<void> {
  if (typeof input !== 'string' || !rawKind(input)) return;
  const msg = await describeRaw(input, { pagesId: pagesIdOf });
  throw new CrtoolsError('CRIT_RAW_IMAGE', msg!, { exitCode: ExitCode.BAD_INPUT, context: { path: input } });
}

/** Run a core command writing to -o FILE (removed again on failure) or stdout. */
export async function withOutput(out: string | undefined, fn: (w: Writable) => Promise<number>): Promise<number> {
  if (!out) return fn(process.stdout);
  const w = createWriteStream(out);
  const opened = new Promise<void>((resolve, reject) => {
    w.once('open', () => resolve());
    w.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    throw badInput('CRIT_BAD_IMAGE', out, undefined, `cannot write: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, e);
  }
  const regular = (await stat(out).catch(() => undefined))?.isFile() ?? false;
  try {
    const rc = await fn(w);
    await new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.end(() => resolve());
    });
    return rc;
  } catch (e) {
    w.destroy();
    // remove a partial output only when it is a regular file: -o /dev/null (or a fifo, a tty)
    // must never be unlinked
    if (regular) await unlink(out).catch(() => undefined);
    throw e;
  }
}
