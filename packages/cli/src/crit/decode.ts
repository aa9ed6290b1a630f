import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { defineCommand } from 'citty';
import { ExitCode } from '@crtools/common';
import { openCritStream } from './_images.js';
import { pyDumps, pyString } from './pyjson.js';
import { Sink } from './sink.js';
import { inputName, stdinInput, type Input } from './io.js';
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
  const img = await openCritStream(input, { pretty: !!opts.pretty, nopl: !!opts.nopl, name });
  const sink = new Sink(output);
  const pretty = !!opts.pretty;
  await sink.write(pretty ? `{\n    "magic": ${pyString(img.magic)},\n    "entries": [` : `{"magic": ${pyString(img.magic)}, "entries": [`);
  let n = 0;
  for await (const e of img.entries) {
    if (sink.closed) break;
    if (pretty) await sink.write((n ? ',\n        ' : '\n        ') + pyDumps(e, 4, 2));
    else await sink.write((n ? ', ' : '') + pyDumps(e, null));
    n++;
  }
  if (pretty) await sink.write(n ? '\n    ]\n}' : ']\n}');
  else await sink.write(']}');
  if (opts.newline) await sink.write('\n');
  await sink.flush();
  return ExitCode.OK;
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
  try {
    const rc = await fn(w);
    await new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.end(() => resolve());
    });
    return rc;
  } catch (e) {
    w.destroy();
    await unlink(out).catch(() => undefined);
    throw e;
  }
}

export const decodeCommand = defineCommand({
  meta: { name: 'decode', description: 'convert criu image from binary type to json' },
  args: {
    pretty: { type: 'boolean', description: 'Multiline with indents and some numerical fields in field-specific format' },
    in: { type: 'string', alias: 'i', description: 'criu image in binary format to be decoded (stdin by default)' },
    out: { type: 'string', alias: 'o', description: 'where to put criu image in json format (stdout by default)' },
  },
  async run({ args }) {
    const input: Input = args.in ? args.in : stdinInput('an image');
    return withOutput(args.out, (w) => decodeImage(input, w, { pretty: !!args.pretty, newline: !args.out }));
  },
});

export const showCommand = defineCommand({
  meta: { name: 'show', description: 'convert criu image from binary to human-readable json' },
  args: {
    in: { type: 'positional', required: false, description: 'criu image in binary format' },
    nopl: { type: 'boolean', description: 'do not show entry payload (if exists)' },
  },
  async run({ args }) {
    if (!args.in) throw usage('show: missing image file argument (crit show IMAGE [--nopl])');
    return decodeImage(args.in, process.stdout, { pretty: true, nopl: !!args.nopl, newline: true });
  },
});
