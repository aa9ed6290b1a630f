import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

/**
 * Run one of the bundled commands (dist/bin/NAME.cjs) as `require` would, with V8's code cache:
 * Node 20 has no module.enableCompileCache(), so the bundle is compiled here through vm.Script
 * with the cachedData kept beside it, one per subcommand (NAME.cjs.SUBCOMMAND.v8cache: a dump
 * and a restore compile different functions). When that is missing or V8 rejects it (another
 * node, another bundle), the command runs compiled afresh and the cache is written as it exits,
 * holding what the run compiled. A cache that cannot be written is no error.
 */
export function loadBundle(name: string): void {
  const file = join(__dirname, `${name}.cjs`);
  const sub = process.argv[2];
  const cacheFile = `${file}.${sub !== undefined && /^[a-z][a-z-]{0,20}$/.test(sub) ? sub : 'none'}.v8cache`;
  const source = readFileSync(file, 'utf8');
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    /* first run */
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: file,
    cachedData,
    // (node's own loader for the bundle's few import() of node builtins)
    importModuleDynamically: ((specifier: string) => import(specifier)) as never,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        /* a read-only install: no cache */
      }
    });
  }
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(file));
  const fn = script.runInThisContext() as (exports: unknown, require: NodeRequire, module: Module, filename: string, dirname: string) => void;
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
}
