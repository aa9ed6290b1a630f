/**
 * What a file kind's restore-plan side is: given a files.img entry (ours or CRIU 4.2's, as
 * @crtools/images decodes it), the plain-data plan the restorer makes the file again from.
 * Everything that can be checked before forking is checked here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { readImageFile } from '@crtools/images';

/** A decoded image entry (protobufjs object: numbers, bigints, Buffers, nested objects). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

/** What a kind's plan side is told about the file it plans. */
export interface PlanContext {
  /** the files.img id */
  id: number;
  /** who names the file, for messages: `pid 12 fd 3` */
  what: string;
  /** the task whose descriptor named the file first (an epoll's owner) */
  pid: number;
  /** the index the file gets in the plan's file list */
  index: number;
}

export interface PlanKind<P = unknown> {
  /** files.img type and the entry's field that holds this kind's record */
  type: string;
  field: string;
  /** the record → what to make again; UNSUPPORTED (exit 4) or BAD_IMAGE errors for what cannot be */
  plan(record: Obj, ctx: PlanContext): P;
  /** the name CRIU's --inherit-fd knows such a file by (`pipe:[ino]`, `socket:[ino]`, a path) */
  inheritKey?(record: Obj): string | undefined;
  /** reads the images this kind keeps besides files.img (pipes-data, sk-queues...) */
  load?(dir: string, files: ReadonlyMap<number, Obj>): Promise<void>;
  /** once every file is planned: links between files (a socketpair's ends) */
  finish?(files: readonly unknown[]): void;
}

export function refuse(msg: string, ctx: Record<string, unknown> = {}): CrtoolsError {
  return new CrtoolsError('RESTORE_UNSUPPORTED', msg, { exitCode: ExitCode.UNSUPPORTED, context: ctx });
}

export function badImage(msg: string, ctx: Record<string, unknown> = {}): CrtoolsError {
  return new CrtoolsError('RESTORE_BAD_IMAGE', msg, { exitCode: ExitCode.BAD_INPUT, context: ctx });
}

export function missingFile(msg: string, path: string): CrtoolsError {
  return new CrtoolsError('RESTORE_MISSING_FILE', msg, { exitCode: ExitCode.FAILED, context: { path } });
}

export const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt((v as number | undefined) ?? 0));

/** The entries of image `file` of dir, checked to carry `magic`; an absent optional one is undefined. */
export async function readImage(dir: string, file: string, magic: string, optional = false): Promise<Obj[] | undefined> {
  const path = join(dir, file);
  if (!existsSync(path)) {
    if (optional) return undefined;
    throw badImage(`${path}: image missing`, { path, image: path });
  }
  const im = (await readImageFile(path)) as { magic: string; entries: Obj[] };
  if (im.magic !== magic) throw badImage(`${path}: a ${im.magic} image where ${magic} was expected`, { path, image: path });
  return im.entries;
}

/** The first entry of an image, which must have one. */
export function firstEntry(entries: Obj[] | undefined, path: string): Obj {
  const e = entries?.[0];
  if (!e) throw badImage(`${path}: image has no entry`, { path, image: path });
  return e;
}
