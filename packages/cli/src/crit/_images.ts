/**
 * Private: the only place where crit talks to @crtools/images (framing, protobuf, crit-JSON
 * conversion all live there). Everything else in crit works on crit JSON values.
 */
import type { Readable, Writable } from 'node:stream';
import type { JsonValue } from './json-reader.js';
import type { CritImage } from './image-dir.js';
import type { Input } from './io.js';

export interface CritStream {
  magic: string;
  /** Entries as crit JSON values, in image order (pagemap head first). */
  entries: AsyncIterable<JsonValue>;
}

export interface CritWriter {
  write(entry: JsonValue): Promise<void>;
  close(): Promise<void>;
}

// Until @crtools/images lands in the workspace, it is loaded at run time by name.
type ImagesModule = Record<string, unknown>;
let mod: Promise<ImagesModule> | undefined;
function images(): Promise<ImagesModule> {
  const name = '@crtools/images';
  mod ??= import(name) as Promise<ImagesModule>;
  return mod;
}

export async function openCritStream(input: Input, opts: { pretty: boolean; nopl: boolean; name: string }): Promise<CritStream> {
  void (await images());
  void input;
  void opts;
  throw new Error('crit: @crtools/images is not available yet');
}

export async function openCritWriter(output: Writable, magic: string, name: string): Promise<CritWriter> {
  void (await images());
  void output;
  void magic;
  void name;
  throw new Error('crit: @crtools/images is not available yet');
}

export async function countCritEntries(input: Input, name: string): Promise<{ magic: string; count: number }> {
  void (await images());
  void input;
  void name;
  throw new Error('crit: @crtools/images is not available yet');
}

export async function loadCritImage(dir: string, file: string): Promise<CritImage> {
  void (await images());
  void dir;
  void file;
  throw new Error('crit: @crtools/images is not available yet');
}

export async function pagesIdOf(file: string): Promise<number | undefined> {
  void file;
  return undefined;
}

export type { Readable };
