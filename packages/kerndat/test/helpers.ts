import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseKerndat, type Kerndat } from '../src/index.js';

/** A kerndat document probed on a 6.18 machine of this project's kind (real data). */
export function machineDoc(): Kerndat {
  return parseKerndat(readFileSync(fileURLToPath(new URL('./fixtures/kerndat-6.18.json', import.meta.url)), 'utf8'));
}

/** The machine's document with what that kernel lacks (or we do not probe) turned on: every check passes. */
export function perfectDoc(): Kerndat {
  const k = machineDoc();
  return {
    ...k,
    has_dirty_track: true,
    has_overlayfs_maps: true,
    has_nftables_concat: true,
    has_autofs: true,
    has_autofs_pipe_ino: true,
    has_overlayfs: true,
    has_link_nsid: true,
    has_ipt_legacy: true,
  };
}

/** Every boolean leaf of a document, as a path (top-level key, or key.sub). */
export function booleanPaths(k: Kerndat): string[][] {
  const out: string[][] = [];
  for (const [key, v] of Object.entries(k)) {
    if (typeof v === 'boolean') out.push([key]);
    else if (v && typeof v === 'object' && !Array.isArray(v) && key !== 'errors')
      for (const [sub, w] of Object.entries(v)) if (typeof w === 'boolean') out.push([key, sub]);
  }
  return out;
}

/** A copy of k with the boolean at path set to value. */
export function withBool(k: Kerndat, path: string[], value: boolean): Kerndat {
  const c = structuredClone(k) as unknown as Record<string, any>;
  if (path.length === 1) c[path[0]!] = value;
  else c[path[0]!] = { ...c[path[0]!], [path[1]!]: value };
  return c as unknown as Kerndat;
}
