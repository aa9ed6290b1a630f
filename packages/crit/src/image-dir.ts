import { ExitCode, CrtoolsError } from '@crtools/common';
import { describeFileEntry, recordField, recordName } from '@crtools/files/view';
import { jsonBigint, jsonNumber, TASK_STATE, type JsonValue } from './_images.js';

/** An image as crit shows it (non-pretty crit JSON: ints as number, bigint above 2^53). */
export interface CritImage {
  magic: string;
  entries: CritEntry[];
}
export type CritEntry = { [k: string]: JsonValue };

/** Loads one image of a directory by file name; throws ENOENT-coded errors when absent. */
export type ImageLoader = (dir: string, file: string) => Promise<CritImage>;

/**
 * A checkpoint directory seen through crit's eyes: images loaded on demand and cached,
 * lookups that the explorers share (tasks, files by id, file names).
 */
export class ImageDir {
  private cache = new Map<string, Promise<CritImage | undefined>>();

  constructor(
    readonly dir: string,
    private readonly loader: ImageLoader,
  ) {}

  /** The image, or undefined when the file does not exist. */
  tryLoad(file: string): Promise<CritImage | undefined> {
    let p = this.cache.get(file);
    if (!p) {
      p = this.loader(this.dir, file).catch((e: unknown) => {
        if ((e as { code?: string }).code === 'ENOENT') return undefined;
        throw e;
      });
      this.cache.set(file, p);
    }
    return p;
  }

  /** The image; a missing one is a BAD_INPUT error naming the directory and file. */
  async load(file: string): Promise<CritImage> {
    const img = await this.tryLoad(file);
    if (!img) {
      throw new CrtoolsError('CRIT_IMAGE_DIR', `${this.dir}: no ${file} (not a complete CRIU image directory?)`, {
        exitCode: ExitCode.BAD_INPUT,
        context: { path: this.dir, image: file },
      });
    }
    return img;
  }

  /**
   * The first entry. With keep=false the image is not cached (a view that reads each task's
   * image once, like ps over thousands of cores, should not hold them all).
   */
  async first(file: string, keep = true): Promise<CritEntry> {
    let img: CritImage | undefined;
    if (keep || this.cache.has(file)) img = await this.load(file);
    else {
      img = await this.tryLoad(file);
      this.cache.delete(file);
      if (!img) img = await this.load(file); // the missing-image error
    }
    const e = img.entries[0];
    if (!e) {
      throw new CrtoolsError('CRIT_IMAGE_DIR', `${this.dir}/${file}: image has no entries`, {
        exitCode: ExitCode.BAD_INPUT,
        context: { path: `${this.dir}/${file}`, image: file },
      });
    }
    return e;
  }

  /** The tasks that were alive (a zombie's checkpoint is its core alone: no mm, fds, fs…). */
  async liveTasks(): Promise<Task[]> {
    const out: Task[] = [];
    for (const t of await this.tasks()) {
      const tc = (await this.first(`core-${t.pid}.img`, false)).tc as CritEntry | undefined;
      if (tc && tc.task_state === TASK_STATE.DEAD) continue;
      out.push(t);
    }
    return out;
  }

  /** pstree entries in image order. */
  async tasks(): Promise<Task[]> {
    const ps = await this.load('pstree.img');
    return ps.entries.map((p) => ({
      pid: taskId(p, 'pid'),
      ppid: num(p.ppid),
      pgid: taskId(p, 'pgid'),
      sid: taskId(p, 'sid'),
      threads: Array.isArray(p.threads) ? p.threads.map(num) : [],
      entry: p,
    }));
  }

  private filesById: Map<number, CritEntry> | undefined;

  /** files.img entry by id (empty when files.img is absent, like old image sets). */
  async fileEntry(id: number): Promise<CritEntry | undefined> {
    if (!this.filesById) {
      const m = new Map<number, CritEntry>();
      const img = await this.tryLoad('files.img').catch(() => undefined);
      for (const f of img?.entries ?? []) m.set(num(f.id), f);
      this.filesById = m;
    }
    return this.filesById.get(id);
  }

  private perTypeImage = new Map<string, Map<number, CritEntry>>();

  /** Old image sets keep each file type in its own image (reg-files.img…). */
  private async legacy(img: string, id: number): Promise<CritEntry | undefined> {
    let m = this.perTypeImage.get(img);
    if (!m) {
      m = new Map();
      const loaded = await this.tryLoad(img).catch(() => undefined);
      for (const f of loaded?.entries ?? []) m.set(num(f.id), f);
      this.perTypeImage.set(img, m);
    }
    return m.get(id);
  }

  private names = new Map<string, string>();

  /**
   * What crit prints for a file: a path for regular files, pipe[N], unix[ino (peer) name],
   * TYPE.id for the rest. With `always` (our extension), a file whose files.img entry is of
   * another kind than asked (memfd-backed mappings…) is still named from that entry.
   */
  async fileName(type: string, id: number, always = false): Promise<string> {
    const key = `${type}:${id}:${always ? 1 : 0}`;
    const hit = this.names.get(key);
    if (hit !== undefined) return hit;
    const s = await this.computeName(type, id, always);
    this.names.set(key, s);
    return s;
  }

  /** A name for any files.img entry; memfds are named from memfd.img ("memfd:NAME"). */
  async describe(fe: CritEntry): Promise<string> {
    const memfd = fe.memfd as CritEntry | undefined;
    if (memfd) {
      const inodes = await this.tryLoad('memfd.img').catch(() => undefined);
      const ino = num(memfd.inode_id);
      const node = inodes?.entries.find((e) => num(e.inode_id) === ino);
      if (node) return `memfd:${String(node.name)}`;
    }
    return describeFileEntry(fe);
  }

  private async computeName(type: string, id: number, always: boolean): Promise<string> {
    const field = LEGACY_IMAGE[type] && recordField(type);
    if (!field) return `${type}.${id}`;
    const fe = await this.fileEntry(id);
    let sub: CritEntry | undefined;
    if (fe) {
      sub = fe[field] as CritEntry | undefined;
      if (!sub && always) return this.describe(fe);
    } else {
      sub = await this.legacy(LEGACY_IMAGE[type]!, id);
    }
    if (sub) return recordName(type, sub) ?? `${type}.${id}`;
    return type === 'REG' ? 'unknown path' : type === 'PIPE' ? 'pipe[?]' : 'unix[?]';
  }
}

const LEGACY_IMAGE: Record<string, string> = { REG: 'reg-files.img', PIPE: 'pipes.img', UNIXSK: 'unixsk.img' };

export interface Task {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
  entry: CritEntry;
}

/** pid/pgid/sid, or the first of ns_pid… as crit's get_task_id does. */
export function taskId(p: CritEntry, key: string): number {
  if (p[key] !== undefined) return num(p[key]);
  const ns = p['ns_' + key];
  if (Array.isArray(ns) && ns.length) return num(ns[0]);
  return 0;
}

export const num = jsonNumber;
export const big = jsonBigint;
