/**
 * The `crit x DIR VIEW` explorers, one file a view. Each view collects plain data from an image
 * directory (collect*), and renders it as text (exactly as CRIU's crit prints ps/fds/mems/rss)
 * or JSON. JSON follows the crtools convention: addresses and other 64-bit values as "0x…" strings.
 */
import { toHex } from '@crtools/common';
import { ImageDir } from '../image-dir.js';
import { collectPs, renderPs, type PsRow } from './ps.js';
import { collectFds, renderFds, type TaskFds } from './fds.js';
import { collectMems, renderMems, type TaskMems } from './mems.js';
import { collectRss, renderRss, type TaskRss } from './rss.js';
import { collectSk, renderSk, type TaskSocks } from './sk.js';
import { collectTree, renderTree, humanBytes, type TreeNode } from './tree.js';

export type { PsRow, TaskFds, TaskMems, TaskRss, TaskSocks, TreeNode };
export { humanBytes, renderTree };

export const VIEWS = ['ps', 'fds', 'mems', 'rss', 'sk', 'tree'] as const;
export type View = (typeof VIEWS)[number];



export async function collectView(d: ImageDir, view: View): Promise<unknown> {
  switch (view) {
    case 'ps':
      return collectPs(d);
    case 'fds':
      return collectFds(d);
    case 'mems':
      return collectMems(d);
    case 'rss':
      return collectRss(d);
    case 'sk':
      return collectSk(d);
    case 'tree':
      return collectTree(d);
  }
}

export function renderView(view: View, data: unknown): string {
  switch (view) {
    case 'ps':
      return renderPs(data as PsRow[]);
    case 'fds':
      return renderFds(data as TaskFds[]);
    case 'mems':
      return renderMems(data as TaskMems[]);
    case 'rss':
      return renderRss(data as TaskRss[]);
    case 'sk':
      return renderSk(data as TaskSocks[]);
    case 'tree':
      return renderTree(data as TreeNode[]);
  }
}

const HEX_KEYS = new Set(['start', 'end', 'vaddr', 'pgoff']);

/** JSON for `--format json`: addresses as "0x…" hex strings, counts and sizes as numbers. */
export function viewJson(data: unknown): string {
  return (
    JSON.stringify(
      data,
      (k, v) => {
        if (typeof v !== 'bigint') return v;
        return HEX_KEYS.has(k) ? toHex(v) : Number(v);
      },
      2,
    ) + '\n'
  );
}
