/**
 * Raw images: files of a CRIU checkpoint that carry no magic and no entries (CRIU's
 * RAW_IMAGE_MAGIC). crit cannot decode them; we say what they are instead.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PAGE_SIZE } from '@crtools/common';
import { parseImageFileName } from './_images.js';

/** What each of CRIU's raw image kinds (@crtools/images RAW_KINDS) holds, as crit explains it. */
const RAW_WHAT: Record<string, string> = {
  PAGES: `raw memory pages (${PAGE_SIZE} bytes each, no entries)`,
  IFADDR: 'the interface addresses of a network namespace as `ip addr save` writes them (no entries)',
  ROUTE: 'the IPv4 routes of a network namespace as `ip route save` writes them (no entries)',
  ROUTE6: 'the IPv6 routes of a network namespace as `ip -6 route save` writes them (no entries)',
  RULE: 'the routing rules of a network namespace as `ip rule save` writes them (no entries)',
  IPTABLES: 'iptables-save output of a network namespace (text, no entries)',
  IP6TABLES: 'ip6tables-save output of a network namespace (text, no entries)',
  NFTABLES: 'the nftables ruleset of a network namespace (no entries)',
  TMPFS_IMG: 'a gzip-compressed tar archive of a tmpfs mount (no entries)',
  TMPFS_DEV: 'a gzip-compressed tar archive of a tmpfs mount (no entries)',
  NETNF_CT: 'the conntrack entries of a network namespace as `conntrack` dumps them (no entries)',
  NETNF_EXP: 'the conntrack expectations of a network namespace (no entries)',
};

/** The raw kind of a file name, if it is one of CRIU's raw images. */
export function rawKind(file: string): string | undefined {
  const p = parseImageFileName(path.basename(file));
  if (!p?.raw) return undefined;
  if (p.kind === 'PAGES' && p.pattern.startsWith('pages-shmem-')) return 'raw shared-memory pages of an old image set (no entries)';
  return RAW_WHAT[p.kind] ?? 'a raw image (no entries)';
}

export interface PagemapIndex {
  /** Reads the pages_id of a pagemap image's head (undefined if it cannot). */
  pagesId(file: string): Promise<number | undefined>;
}

/**
 * One line describing a raw image: what it holds, its size, and for pages-N.img which
 * pagemap image(s) of the same directory index it (their head's pages_id is N).
 */
export async function describeRaw(file: string, index: PagemapIndex): Promise<string | undefined> {
  const what = rawKind(file);
  if (!what) return undefined;
  let size: number | undefined;
  try {
    size = (await stat(file)).size;
  } catch {
    size = undefined;
  }
  const base = path.basename(file);
  let s = `${file}: ${what}`;
  const pm = base.match(/^pages-(\d+)\.img$/);
  if (pm) {
    if (size !== undefined) s += `, ${Math.floor(size / PAGE_SIZE)} page${size === PAGE_SIZE ? '' : 's'} (${size} bytes)`;
    const id = Number(pm[1]);
    const dir = path.dirname(file);
    const owners: string[] = [];
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      names = [];
    }
    for (const n of names.filter((n) => /^pagemap-(shmem-)?\d+\.img$/.test(n)).sort()) {
      if ((await index.pagesId(path.join(dir, n))) === id) owners.push(n);
    }
    s += owners.length
      ? `; described by ${owners.join(', ')} (pages_id ${id}): decode that instead`
      : `; no pagemap image with pages_id ${id} next to it describes it`;
  } else if (size !== undefined) {
    s += `, ${size} bytes`;
  }
  return s;
}
