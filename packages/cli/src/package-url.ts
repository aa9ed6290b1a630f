import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const found = new Map<string, string>();
// (realpath(3) in one call: the JavaScript realpathSync lstats each component of the path)
const realpath = (p: string): string => realpathSync.native(p);
let selfDir: string | undefined;

/** The folder of package `name` as seen from the package in folder `from`, if it sees it. */
function visibleFrom(from: string, name: string): string | undefined {
  const dir = (createRequire(join(from, 'package.json')).resolve.paths(name) ?? []).map((d) => join(d, name)).find((d) => existsSync(join(d, 'package.json')));
  return dir === undefined ? undefined : realpath(dir);
}

/** The folder `dir` if it holds package `name`. */
function holds(dir: string, name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name ? realpath(dir) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where package `name` is installed: beside this package (npm's node_modules/@crtools/, the
 * workspace's packages/, pnpm's for a direct dependency: one file read, the common case), else
 * seen from this package (npm puts every package of the tree where it sees them), else from its
 * @crtools dependencies, and theirs (pnpm puts a package's dependencies beside it only).
 */
function packageDir(name: string): string | undefined {
  const self = (selfDir ??= realpath(join(__dirname, '..', '..'))); // dist/bin/ of this package
  const beside = holds(join(dirname(self), name.slice(name.indexOf('/') + 1)), name);
  if (beside !== undefined) return beside;
  const seen = new Set<string>();
  const queue = [self];
  while (queue.length > 0) {
    const from = queue.shift()!;
    const hit = visibleFrom(from, name);
    if (hit !== undefined) return hit;
    const deps = (JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const dep of Object.keys(deps).filter((d) => d.startsWith('@crtools/'))) {
      const dir = visibleFrom(from, dep);
      if (dir !== undefined && !seen.has(dir)) {
        seen.add(dir);
        queue.push(dir);
      }
    }
  }
  return undefined;
}

/**
 * For the bundled bins (tsup.bins.config.ts): the URL of a file in the dist/ folder of the
 * installed package `name` (its dist/index.js), which a module of that package bundled here
 * uses in place of its own `import.meta.url` to find its addon, blob or data files.
 */
export function crtoolsPackageUrl(name: string): string {
  let url = found.get(name);
  if (url === undefined) {
    const dir = packageDir(name);
    if (dir === undefined) throw new Error(`${name} is not installed beside @crtools/cli`);
    url = pathToFileURL(join(dir, 'dist', 'index.js')).href;
    found.set(name, url);
  }
  return url;
}
