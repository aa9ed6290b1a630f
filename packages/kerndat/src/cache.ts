import { mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { silentLogger, type Logger } from '@crtools/common';
import { parseKerndat, stringifyKerndat } from './json.js';
import { kernelIdentity, probeKerndat, PROBES } from './probe.js';
import { KERNDAT_PROBE_REVISION, type Kerndat } from './types.js';

/** Where the cache lives unless told otherwise (like CRIU's /run/criu.kdat). */
export const DEFAULT_CACHE_PATH = '/run/crtools/kerndat.json';

export interface LoadOptions {
  /** Cache file; default $CRTOOLS_KERNDAT_CACHE or /run/crtools/kerndat.json. */
  cachePath?: string;
  /** Probe afresh, ignoring (and then rewriting) the cache. */
  noCache?: boolean;
  /** Do not write the cache. */
  readOnly?: boolean;
  logger?: Logger;
}

export interface LoadResult {
  kerndat: Kerndat;
  /** true when the document came from the cache */
  cached: boolean;
  cachePath: string;
}

export function cachePathOf(opts: LoadOptions = {}): string {
  return opts.cachePath ?? process.env.CRTOOLS_KERNDAT_CACHE ?? DEFAULT_CACHE_PATH;
}

/** The cached document if it belongs to this boot of this kernel and has every current probe answered, else undefined. */
export function readCache(path: string): Kerndat | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const k = parseKerndat(text);
    const id = kernelIdentity();
    // written by an older crtools otherwise
    const complete = PROBES.every(([name]) => k.probes.includes(name)) && k.probe_revision === KERNDAT_PROBE_REVISION;
    // a probe that failed may not fail again (or an older crtools failed where this one answers)
    const clean = Object.keys(k.errors).length === 0;
    return k.release === id.release && k.boot_id === id.boot_id && complete && clean ? k : undefined;
  } catch {
    return undefined;
  }
}

/** Write the document atomically: a temporary file next to it, then rename. */
export function writeCache(path: string, k: Kerndat): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, stringifyKerndat(k) + '\n', { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The kerndat document: from the cache while release and boot id match, else probed (and cached). */
export function loadKerndat(opts: LoadOptions = {}): LoadResult {
  const log = opts.logger ?? silentLogger;
  const cachePath = cachePathOf(opts);
  if (!opts.noCache) {
    const k = readCache(cachePath);
    if (k) return { kerndat: k, cached: true, cachePath };
  }
  const kerndat = probeKerndat({ logger: log });
  if (!opts.readOnly) {
    try {
      writeCache(cachePath, kerndat);
    } catch (e) {
      log.warn(`kerndat: cannot write cache ${cachePath}: ${(e as Error).message}`);
    }
  }
  return { kerndat, cached: false, cachePath };
}
