/**
 * The package boundaries, enforced: no package reaches into another's src/ (nor does the
 * end-to-end suite), every package it imports is one its package.json declares, and the dump
 * side never loads the restorer's native addon (checked statically over the declared
 * dependencies and at run time over the addons a real `criu dump` dlopens).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criuBin, repoRoot } from '../lib/paths.js';
import { killAllStarted, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

afterAll(() => killAllStarted());

const packagesDir = path.join(repoRoot, 'packages');
const packages = readdirSync(packagesDir).filter((p) => statSync(path.join(packagesDir, p, 'package.json'), { throwIfNoEntry: false }));
const manifest = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file names: static imports, re-exports, dynamic imports. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?\sfrom\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

const packageName = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
const builtins = new Set(builtinModules);

describe('package boundaries', () => {
  const roots = [...packages.map((p) => path.join(packagesDir, p)), path.join(repoRoot, 'test')];

  it('no file imports another package\'s src/ (by a relative path or by name)', () => {
    const bad: string[] = [];
    for (const root of roots) {
      for (const file of sourceFiles(root)) {
        for (const spec of specifiers(file)) {
          if (/^@crtools\/[^/]+\/src(\/|$)/.test(spec)) bad.push(`${path.relative(repoRoot, file)}: ${spec}`);
          if (!spec.startsWith('.')) continue;
          // (a shared build preset at the repository root is no package's inside)
          const target = path.resolve(path.dirname(file), spec);
          if (roots.some((r) => r !== root && target.startsWith(r + path.sep))) bad.push(`${path.relative(repoRoot, file)}: ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('every package a file imports is declared in its package.json (sources: dependencies; tests: dev too)', () => {
    const bad: string[] = [];
    for (const root of roots) {
      const m = manifest(root);
      const deps = new Set(Object.keys(m.dependencies ?? {}));
      const dev = new Set([...deps, ...Object.keys(m.devDependencies ?? {})]);
      for (const file of sourceFiles(root)) {
        // a test is a test wherever it sits (a file kind keeps its tests in its own folder under src/)
        const inSrc = path.relative(root, file).startsWith('src' + path.sep) && !file.endsWith('.test.ts');
        for (const spec of specifiers(file)) {
          if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(packageName(spec))) continue;
          // a module the bundler makes (crtools:NAME, resolved by a tsup config's plugin) is no package
          if (spec.startsWith('crtools:')) continue;
          const name = packageName(spec);
          if (name === m.name) continue;
          if (!(inSrc ? deps : dev).has(name)) bad.push(`${path.relative(repoRoot, file)}: ${name}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('every @crtools dependency a package declares is imported somewhere in it (no stale ones)', () => {
    const stale: string[] = [];
    for (const root of roots) {
      const m = manifest(root);
      const used = new Set(sourceFiles(root).flatMap((f) => specifiers(f).map(packageName)));
      for (const dep of Object.keys(m.dependencies ?? {}).filter((d) => d.startsWith('@crtools/'))) {
        // the cli package is also run through its bins by the end-to-end suite
        if (!used.has(dep) && !(m.name === '@crtools/test' && dep === '@crtools/cli')) stale.push(`${m.name}: ${dep}`);
      }
    }
    expect(stale).toEqual([]);
  });

  it('the dump side does not depend on the restorer, even indirectly', () => {
    const byName = new Map(packages.map((p) => [manifest(path.join(packagesDir, p)).name as string, manifest(path.join(packagesDir, p))]));
    const reach = (name: string, seen = new Set<string>()): Set<string> => {
      for (const d of Object.keys(byName.get(name)?.dependencies ?? {}).filter((x) => x.startsWith('@crtools/'))) {
        if (!seen.has(d)) {
          seen.add(d);
          reach(d, seen);
        }
      }
      return seen;
    };
    for (const side of ['@crtools/dump', '@crtools/parasite', '@crtools/pagemap', '@crtools/procfs', '@crtools/kerndat']) {
      expect([...reach(side)], side).not.toContain('@crtools/restorer');
    }
  });

  it('a real criu dump (with an inotify watch to resolve) never dlopens the restorer\'s addon', () => {
    const log = path.join(tmp('dlopen'), 'addons.txt');
    const hook = path.join(path.dirname(log), 'hook.cjs');
    writeFileSync(hook, `const fs = require('fs'); const o = process.dlopen; process.dlopen = function (m, f, ...r) { fs.appendFileSync(${JSON.stringify(log)}, f + '\\n'); return o.call(this, m, f, ...r); };\n`);
    writeFileSync(log, '');
    const w = startWorkload('inotify', [tmp('dlopen-watched')]);
    const r = spawnSync(process.execPath, ['--require', hook, criuBin, 'dump', '-t', String(w.pid), '-D', tmp('dlopen-img')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const loaded = readFileSync(log, 'utf8').trim().split('\n').map((f) => path.basename(f));
    expect(loaded).toEqual(expect.arrayContaining(['parasite.node', 'sys.node']));
    expect(loaded).not.toContain('restorer.node');
  });
});
