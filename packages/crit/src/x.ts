import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { critImageFromBuffer, loadCritImage } from './_images.js';
import { readCheckpointArchive } from './archive.js';
import { ImageDir, type ImageLoader } from './image-dir.js';
import { VIEWS, collectView, renderView, viewJson, type View } from './explore/index.js';
import { usage } from './errors.js';

export interface ExploreOptions {
  format?: 'text' | 'json';
  /** How images are read (tests may inject one); defaults to the images package. */
  loader?: ImageLoader;
}

/**
 * `crit x DIR VIEW`: explore a checkpoint directory, or a checkpoint archive (a tar, gzip'd or
 * not, as podman's `checkpoint --export` writes). ps/fds/mems/rss print what CRIU's crit
 * prints; sk and tree are ours; every view can be JSON (`--format json`).
 */
export async function exploreDir(dir: string, view: string, output: Writable, opts: ExploreOptions = {}): Promise<number> {
  if (!(VIEWS as readonly string[]).includes(view)) {
    throw usage(`x: unknown view '${view}' (choose from ${VIEWS.join(', ')})`);
  }
  const format = opts.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw usage(`x: unknown format '${format}' (text or json)`);
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    throw new CrtoolsError('CRIT_NO_FILE', `${dir}: no such directory`, { exitCode: ExitCode.BAD_INPUT, context: { path: dir }, cause: e });
  }
  let loader = opts.loader ?? loadCritImage;
  if (st.isFile()) {
    // a checkpoint archive (podman's --export): its images are read from memory
    const images = await readCheckpointArchive(dir);
    loader = async (archive, file) => {
      const buf = images.get(file);
      if (!buf) throw Object.assign(new Error(`${archive}: no ${file}`), { code: 'ENOENT' });
      return critImageFromBuffer(buf, `${archive}:${file}`);
    };
  } else if (!st.isDirectory()) {
    throw new CrtoolsError('CRIT_IMAGE_DIR', `${dir}: not a directory (crit x wants a checkpoint directory or a checkpoint archive)`, { exitCode: ExitCode.BAD_INPUT, context: { path: dir } });
  }
  const d = new ImageDir(dir, loader);
  const data = await collectView(d, view as View);
  output.write(format === 'json' ? viewJson(data) : renderView(view as View, data));
  return ExitCode.OK;
}
