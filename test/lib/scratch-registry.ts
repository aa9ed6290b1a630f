import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * A registry on 127.0.0.1 that serves the packages of a folder of tarballs (`pnpm pack`
 * outputs), as if they were published: one version each. npm is pointed at it for one scope
 * (`--@scope:registry=URL`) and takes every other package from its usual registry.
 */
export interface ScratchRegistry {
  url: string;
  /** package names asked for, in order (a check that npm came here) */
  asked: string[];
  close(): Promise<void>;
}

export async function startScratchRegistry(tarballDir: string): Promise<ScratchRegistry> {
  const pkgs = new Map<string, { manifest: Record<string, any>; file: string; data: Buffer }>();
  for (const file of readdirSync(tarballDir).filter((f) => f.endsWith('.tgz'))) {
    const data = readFileSync(path.join(tarballDir, file));
    const manifest = JSON.parse(execFileSync('tar', ['xzf', path.join(tarballDir, file), '-O', 'package/package.json'], { encoding: 'utf8' }));
    pkgs.set(manifest.name, { manifest, file, data });
  }
  const asked: string[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    const want = decodeURIComponent((req.url ?? '/').slice(1));
    const tarball = [...pkgs.values()].find((p) => want === `${p.manifest.name}/-/${p.file}`);
    if (tarball) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(tarball.data);
      return;
    }
    const p = pkgs.get(want);
    asked.push(want);
    if (!p) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    const integrity = 'sha512-' + createHash('sha512').update(p.data).digest('base64');
    const version = { ...p.manifest, dist: { tarball: `${base}${p.manifest.name}/-/${p.file}`, integrity } };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: p.manifest.name, 'dist-tags': { latest: p.manifest.version }, versions: { [p.manifest.version]: version } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url: base, asked, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
