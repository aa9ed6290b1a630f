/**
 * Inputs and outputs of crit commands: a path or a stream in, a stream out.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { noFile } from './errors.js';

/** Where an image or a JSON document comes from: a file path or an open stream. */
export type Input = string | Readable;

/** The name crit uses for an input in messages. */
export function inputName(input: Input, fallback = '<stdin>'): string {
  return typeof input === 'string' ? input : fallback;
}

/** Read a whole input into memory (JSON documents for encode). */
export async function readAll(input: Input): Promise<Buffer> {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  } catch (e) {
    throw openError(e, inputName(input));
  }
  return Buffer.concat(chunks);
}

/** Turn an fs error on an input into a one-line crit error. */
export function openError(e: unknown, name: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return noFile(name, e);
  if (code === 'EISDIR') {
    return new CrtoolsError('CRIT_BAD_IMAGE', `${name}: is a directory, not an image file`, { exitCode: ExitCode.BAD_INPUT, context: { path: name }, cause: e });
  }
  if (code) {
    return new CrtoolsError('CRIT_IO', `${name}: ${code}`, { exitCode: ExitCode.FAILED, context: { path: name }, cause: e });
  }
  return e as Error;
}

/** stdin for a command, refusing a terminal (crit would wait forever for an image). */
export function stdinInput(what: string): Readable {
  if (process.stdin.isTTY) {
    throw new CrtoolsError('CRIT_USAGE', `no input: give -i FILE or pipe ${what} into stdin`, { exitCode: ExitCode.USAGE });
  }
  return process.stdin;
}

/** Run fn, turning Node fs errors (ENOENT, EISDIR, EACCES…) on `name` into one-line crit errors. */
export async function withFsErrors<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall) throw openError(e, name);
    throw e;
  }
}
