/**
 * A checkpoint inside a tar archive, as podman exports one (`podman container checkpoint
 * --export FILE.tar.gz`: the images under checkpoint/, beside config.dump, spec.dump,
 * stats-dump, rootfs-diff.tar...). The archive is read whole into memory, uncompressed (gzip;
 * zstd, podman 4's default, through the zstd tool; or none), and its regular files are indexed
 * by name; the images are those under `checkpoint/`, or at the top when it has no such directory.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { CrtoolsError, ExitCode } from '@crtools/common';

const BLOCK = 512;

function archiveError(file: string, problem: string, cause?: unknown): CrtoolsError {
  return new CrtoolsError('CRIT_ARCHIVE', `${file}: ${problem}`, { exitCode: ExitCode.BAD_INPUT, context: { path: file }, cause });
}

/** A NUL-terminated (or field-long) text field of a header. */
function field(h: Buffer, at: number, len: number): string {
  const f = h.subarray(at, at + len);
  const nul = f.indexOf(0);
  return f.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

/** A numeric field: octal text, or base-256 (GNU) when the top bit of its first byte is set. */
function number(h: Buffer, at: number, len: number): number {
  if (h[at]! & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + h[at + i]!;
    return v;
  }
  const t = field(h, at, len).trim();
  return t === '' ? 0 : Number.parseInt(t, 8);
}

/** The records of a pax extended header ("LEN key=value\n" each). */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    if (sp === -1) break;
    const len = Number.parseInt(data.subarray(at, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

/** Regular files of a tar archive (ustar, GNU long names, pax paths), by normalised name. */
export function tarFiles(buf: Buffer, file: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let at = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  if (buf.length < BLOCK) throw archiveError(file, `not a tar archive (${buf.length} bytes, less than one header)`);
  while (at + BLOCK <= buf.length) {
    const h = buf.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break; // the end-of-archive blocks
    let sum = 0;
    let signed = 0; // (some old tars summed signed bytes)
    for (let i = 0; i < BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
      sum += b;
      signed += b > 127 ? b - 256 : b;
    }
    const want = number(h, 148, 8);
    if (sum !== want && signed !== want) throw archiveError(file, `not a tar archive (bad header checksum at offset ${at})`);
    const size = number(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    const dataAt = at + BLOCK;
    if (dataAt + size > buf.length) throw archiveError(file, `tar archive cut short (an entry at offset ${at} needs ${size} bytes)`);
    const data = buf.subarray(dataAt, dataAt + size);
    at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      paxPath = paxRecords(data).get('path');
      continue;
    }
    if (type === 'g') continue;
    const prefix = h.subarray(257, 263).toString('latin1').startsWith('ustar') ? field(h, 345, 155) : '';
    const name = paxPath ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    longName = paxPath = undefined;
    if (type !== '0' && type !== '\0' && type !== '7') continue; // directories, links, devices
    files.set(name.replace(/^(\.\/)+/, ''), data);
  }
  return files;
}

const ZSTD_MAGIC = 0xfd2fb528;

/** A zstd frame (podman 4's default --compress) through the zstd tool: node 20 has no zstd. */
function unzstd(buf: Buffer, file: string): Buffer {
  // (child_process loaded here only: crit's other commands never need it)
  const r = process.getBuiltinModule('node:child_process').spawnSync('zstd', ['-d', '-c', '-q'], { input: buf, maxBuffer: 2 ** 31 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw archiveError(file, code === 'ENOENT' ? 'a zstd archive, and no zstd tool to read it (Debian package zstd)' : `zstd failed (${code ?? r.error.message})`, r.error);
  }
  if (r.status !== 0) throw archiveError(file, `not a zstd file (${r.stderr.toString().trim().split('\n')[0] ?? ''})`);
  return r.stdout;
}

/** The archive's images by file name (under checkpoint/ when it has that directory). */
export async function readCheckpointArchive(file: string): Promise<Map<string, Buffer>> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new CrtoolsError('CRIT_NO_FILE', `${file}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read'}`, { exitCode: ExitCode.BAD_INPUT, context: { path: file }, cause: e });
  }
  if (buf.length >= 4 && buf.readUInt32LE(0) === ZSTD_MAGIC) buf = unzstd(buf, file);
  else if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw archiveError(file, `not a gzip file (${(e as Error).message})`, e);
    }
  }
  const all = tarFiles(buf, file);
  const inDir = [...all.keys()].some((n) => n.startsWith('checkpoint/'));
  const images = new Map<string, Buffer>();
  for (const [name, data] of all) {
    const rel = inDir ? (name.startsWith('checkpoint/') ? name.slice('checkpoint/'.length) : undefined) : name;
    if (rel && !rel.includes('/')) images.set(rel, data);
  }
  if (![...images.keys()].some((n) => n.endsWith('.img'))) throw archiveError(file, 'no checkpoint images in the archive (podman keeps them under checkpoint/)');
  return images;
}
