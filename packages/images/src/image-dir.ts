// node:fs/promises taken when first called: loading it (node's readline and file watchers come
// with it) costs a few ms of every start-up
const fsp = () => process.getBuiltinModule('node:fs/promises');
import { join, resolve } from 'node:path';
import { imageError, ImageErrorCode } from './errors.js';
import type { Entry, Image } from './framing.js';
import { readImageFile } from './io.js';
import { MAGICS, RAW_KINDS } from './magic.js';

/**
 * Helpers for an images directory: which file is which kind (core-2716.img → CORE, 2716),
 * the `parent` link of incremental dumps, and the inventory.
 */

export interface ImageFileName {
  /** File name (no directory). */
  file: string;
  /** Kind as crit names it (CORE, PAGEMAP, …; PAGES etc. for raw kinds). */
  kind: string;
  /** The id in the name (pid, ns id, pages id…), a string for stats-<word>; undefined when the name has none. */
  id?: number | string;
  /** True for raw images (no magic, no entries). */
  raw: boolean;
  /** Variant of the name where a kind has several (e.g. 'pagemap-shmem-%u.img'). */
  pattern: string;
}

interface Pattern {
  re: RegExp;
  kind: string;
  raw: boolean;
  pattern: string;
  idKind: 'u' | 'x' | 's' | null;
}

function compile(pattern: string, kind: string, raw: boolean): Pattern {
  let idKind: Pattern['idKind'] = null;
  const src = pattern
    .split(/(%[uxs])/)
    .map((part) => {
      if (part === '%u') return (idKind = 'u'), '(\\d+)';
      if (part === '%x') return (idKind = 'x'), '([0-9a-f]+)';
      if (part === '%s') return (idKind = 's'), '([A-Za-z0-9_]+)';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { re: new RegExp(`^${src}$`), kind, raw, pattern, idKind };
}

const PATTERNS: Pattern[] = [
  ...MAGICS.flatMap((m) => m.files.map((f) => compile(f, m.name, false))),
  ...RAW_KINDS.flatMap((r) => r.files.map((f) => compile(f, r.name, true))),
];

/** Classify a file name; undefined when it is not a CRIU image name. */
export function parseImageFileName(file: string): ImageFileName | undefined {
  for (const p of PATTERNS) {
    const m = p.re.exec(file);
    if (!m) continue;
    let id: number | string | undefined;
    if (p.idKind === 'u') id = Number(m[1]);
    else if (p.idKind === 'x') id = parseInt(m[1]!, 16);
    else if (p.idKind === 's') id = m[1];
    return { file, kind: p.kind, id, raw: p.raw, pattern: p.pattern };
  }
  return undefined;
}

/** The file name CRIU uses for a kind and id (first pattern of the kind). */
export function imageFileName(kind: string, id?: number | string): string {
  const info = MAGICS.find((m) => m.name === kind) ?? RAW_KINDS.find((r) => r.name === kind);
  if (!info || info.files.length === 0) throw imageError(ImageErrorCode.BAD_MAGIC, {}, `unknown image kind ${kind}`);
  const pattern = info.files[0]!;
  return pattern.replace(/%[uxs]/, () => {
    if (id === undefined) throw imageError(ImageErrorCode.BAD_MAGIC, {}, `${kind} file names need an id`);
    return typeof id === 'number' && pattern.includes('%x') ? id.toString(16) : String(id);
  });
}

export interface ImageDirEntry extends ImageFileName {
  path: string;
}

/** An images directory. */
export interface ImageDir {
  path: string;
  /** Every CRIU image in the directory, sorted by kind then id. */
  list(): Promise<ImageDirEntry[]>;
  /** Images of one kind (e.g. every CORE). */
  find(kind: string): Promise<ImageDirEntry[]>;
  /** Path of the image of a kind and id (whether or not it exists). */
  pathOf(kind: string, id?: number | string): string;
  /** The listed image of a kind and id, or undefined when the directory has none. */
  get(kind: string, id?: number | string): Promise<ImageDirEntry | undefined>;
  /** Read the image of a kind and id (its magic must match the kind). */
  read(kind: string, id?: number | string): Promise<Image>;
  /** Read the inventory entry (throws if absent or malformed). */
  inventory(): Promise<Entry>;
  /** The parent images directory of an incremental dump (`parent` symlink), or null. */
  parent(): Promise<ImageDir | null>;
  /** This directory followed by its parents, nearest first (stops at a loop). */
  chain(): Promise<ImageDir[]>;
}

export function openImageDir(path: string): ImageDir {
  const dir: ImageDir = {
    path,
    async list() {
      const names = await fsp().readdir(path);
      const out: ImageDirEntry[] = [];
      for (const n of names) {
        const p = parseImageFileName(n);
        if (p) out.push({ ...p, path: join(path, n) });
      }
      out.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : String(a.id ?? '').localeCompare(String(b.id ?? ''), undefined, { numeric: true })));
      return out;
    },
    async find(kind) {
      return (await dir.list()).filter((e) => e.kind === kind);
    },
    pathOf(kind, id) {
      return join(path, imageFileName(kind, id));
    },
    async get(kind, id) {
      return (await dir.list()).find((e) => e.kind === kind && e.id === id);
    },
    async read(kind, id) {
      return readImageFile(dir.pathOf(kind, id), { name: kind });
    },
    async inventory() {
      const img = await readImageFile(join(path, 'inventory.img'), { name: 'INVENTORY' });
      if (img.entries.length !== 1) throw imageError(ImageErrorCode.BAD_ENTRY, { file: join(path, 'inventory.img') }, `expected one inventory entry, found ${img.entries.length}`);
      return img.entries[0]!;
    },
    async parent() {
      const link = join(path, 'parent');
      let target: string;
      try {
        target = await fsp().readlink(link);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      const abs = resolve(path, target);
      await fsp().stat(abs); // a dangling parent link is an error the caller should see
      return openImageDir(abs);
    },
    async chain() {
      const out: ImageDir[] = [dir];
      const seen = new Set([resolve(path)]);
      let cur: ImageDir | null = dir;
      while ((cur = await cur.parent())) {
        const r = resolve(cur.path);
        if (seen.has(r)) break;
        seen.add(r);
        out.push(cur);
      }
      return out;
    },
  };
  return dir;
}
