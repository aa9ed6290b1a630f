import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';
import type { SysNative } from '@crtools/sys';
import { crtoolsPackageUrl } from './package-url.js';

/** What load-bundle takes from the @crtools/sys addon (its source.cc; only the type is imported: no module of it runs here). */
type SourceReader = Pick<SysNative, 'sourceText' | 'fileBytes'>;

/**
 * The @crtools/sys addon, loaded here before the bundle (the bundle's @crtools/sys loads the
 * same file, which node then has already), or undefined where it cannot be loaded: the files are
 * then read through node:fs.
 */
function sourceReader(): SourceReader | undefined {
  try {
    return createRequire(crtoolsPackageUrl('@crtools/sys'))('../build/Release/sys.node') as SourceReader;
  } catch {
    return undefined;
  }
}

/**
 * Run one of the bundled commands (dist/bin/NAME.cjs) as `require` would, with V8's code cache:
 * Node 20 has no module.enableCompileCache(), so the bundle is compiled here through vm.Script
 * with the cachedData kept beside it, one per subcommand (NAME.cjs.SUBCOMMAND.v8cache: a dump
 * and a restore compile different functions). When that is missing or V8 rejects it (another
 * node, another bundle), the command runs compiled afresh and the cache is written as it exits,
 * holding what the run compiled. A cache that cannot be written is no error.
 *
 * The bundle is written wrapped as a module function (tsup.bins.config.ts: its text is what
 * Module.wrap would make of it), so that its text is compiled as read, not copied into a
 * wrapped one. `native`: read it and its cache through @crtools/sys (source.cc: no page
 * faulted one at a time, no second copy; ~15 ms of each start on a guest whose faults go
 * through a hypervisor), for a command that loads that addon anyway.
 */
export function loadBundle(name: string, opts: { native?: boolean } = {}): void {
  // bin/NAME.js's shell line started node without NODE_EXTRA_CA_CERTS: the children (action
  // scripts, helpers) get the environment the user gave
  const ca = process.env.CRTOOLS_NODE_EXTRA_CA_CERTS;
  if (ca !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = ca;
    delete process.env.CRTOOLS_NODE_EXTRA_CA_CERTS;
  }
  const file = join(__dirname, `${name}.cjs`);
  const sub = process.argv[2];
  // V8 rejects a cache made under other flags: node started by the bin's shell line (with its
  // flags) and `node criu.js` (without) each keep their own, not rewriting one another's
  const flags = process.execArgv.length ? `.${flagsKey(process.execArgv)}` : '';
  const cacheFile = `${file}.${sub !== undefined && /^[a-z][a-z-]{0,20}$/.test(sub) ? sub : 'none'}${flags}.v8cache`;
  const reader = opts.native ? sourceReader() : undefined;
  const text = reader?.sourceText(file);
  // the bundle is ASCII (tsup.bins.config.ts): read as bytes and taken as latin1, a copy, where
  // readFileSync(file, 'utf8') reads in small blocks and decodes
  const source = typeof text === 'string' ? text : readFileSync(file).toString('latin1');
  let cachedData: Buffer | undefined;
  const bytes = reader?.fileBytes(cacheFile);
  if (Buffer.isBuffer(bytes)) cachedData = bytes;
  else if (reader === undefined) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      /* first run */
    }
  }
  // (no importModuleDynamically: the bundle has no import() (the build checks it), and giving
  // one makes node load its ES module machinery for vm at each start, ~1 ms)
  const script = new vm.Script(source, { filename: file, cachedData });
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

/** A short key of node's own command-line flags (FNV-1a of their text, hex). */
function flagsKey(argv: string[]): string {
  let h = 0x811c9dc5;
  for (const c of argv.join('\0')) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16);
}
