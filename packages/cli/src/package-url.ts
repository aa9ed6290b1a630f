import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const found = new Map<string, string>();

/**
 * For the bundled bins (tsup.bins.config.ts): the URL of a file in the dist/ folder of the
 * installed package `name` (its dist/index.js), which a module of that package bundled here
 * uses in place of its own `import.meta.url` to find its addon, blob or data files. Looked up
 * from this bundle's place as `require` would, wherever npm or pnpm installed the package.
 */
export function crtoolsPackageUrl(name: string): string {
  let url = found.get(name);
  if (url === undefined) {
    const dir = (require.resolve.paths(name) ?? []).map((d) => join(d, name)).find((d) => existsSync(join(d, 'package.json')));
    if (dir === undefined) throw new Error(`${name} is not installed beside @crtools/cli`);
    url = pathToFileURL(join(realpathSync(dir), 'dist', 'index.js')).href;
    found.set(name, url);
  }
  return url;
}
