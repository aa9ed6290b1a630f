import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { defineConfig, type Options } from 'tsup';

type Plugin = NonNullable<Options['esbuildPlugins']>[number];

/**
 * The `criu` and `crit` commands, each bundled with the workspace packages, citty and consola
 * into one file, dist/bin/criu.cjs and crit.cjs (bin/*.js require them), so that a command
 * starts without resolving and loading a hundred modules. A subcommand's modules (imported
 * lazily in criu/command.ts) are initialised only when it runs. protobufjs stays external
 * (loaded by @crtools/images through createRequire), as do node's own modules.
 *
 * The native addons and blobs stay files of their packages (build/Release/*.node,
 * blobs/*.bin, proto/, gen/, package.json), which each package finds relative to its module's
 * `import.meta.url`. Bundled, that URL would be the bundle's: each bundled module of a
 * @crtools package reads instead crtoolsPackageUrl(its name) (src/package-url.ts): its
 * package's dist/index.js, found at run time from here or through the @crtools packages this one
 * depends on (wherever npm or pnpm put it), a file beside the original module in dist/.
 */
const packageUrls: Plugin = {
  name: 'crtools-package-urls',
  setup(build) {
    build.onLoad({ filter: /[\\/]dist[\\/][^\\/]+\.js$/ }, (args) => {
      const pkgDir = dirname(dirname(args.path));
      if (basename(dirname(args.path)) !== 'dist') return undefined;
      let name: string;
      try {
        name = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { name: string }).name;
      } catch {
        return undefined;
      }
      if (!name.startsWith('@crtools/')) return undefined;
      // a command definition nobody runs (a package's own bin command, beside the library a
      // criu command uses) is dropped, and what only it imports (consola: ~20 ms to load)
      const text = readFileSync(args.path, 'utf8').replace(/(?<![\w.])defineCommand\(/g, '/* @__PURE__ */ defineCommand(');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'js' };
      return { contents: text.replaceAll('import.meta.url', `crtoolsPackageUrl(${JSON.stringify(name)})`), loader: 'js' };
    });
  },
};

/**
 * citty's copy of scule (its case conversions) answered by src/citty-scule.ts, which leaves
 * to scule only the names that are not plain lowercase words joined by '-' (case-forms.ts):
 * what citty's parseArgs spent converting every declared option name at each start. The build
 * fails if citty no longer imports scule as this expects.
 */
const CITTY_SCULE_IMPORT = 'import { n as kebabCase, r as snakeCase, t as camelCase } from "./_chunks/libs/scule.mjs";';
const cittyScule: Plugin = {
  name: 'crtools-citty-scule',
  setup(build) {
    let scule: string | undefined;
    build.onResolve({ filter: /^\.\/_chunks\/libs\/scule\.mjs$/ }, (args) => {
      if (!/[\\/]citty[\\/]dist[\\/]index\.mjs$/.test(args.importer)) return undefined;
      if (!readFileSync(args.importer, 'utf8').includes(CITTY_SCULE_IMPORT)) {
        throw new Error(`${args.importer} no longer imports scule as src/citty-scule.ts expects (${CITTY_SCULE_IMPORT})`);
      }
      scule = join(args.resolveDir, args.path);
      return { path: resolve('src/citty-scule.ts') };
    });
    build.onResolve({ filter: /^crtools:citty-scule$/ }, () => {
      if (scule === undefined) throw new Error('crtools:citty-scule imported before citty');
      return { path: scule };
    });
  },
};

/**
 * crit renders images straight from their bytes (crit-text.ts), not through the images' decoders:
 * its bundle leaves out the build's decoders (@crtools/images gen/decoders.js, ~0.25 MB read at
 * each start) and compiles a decoder, when it needs one, at first use as before.
 */
const noPrebuiltDecoders: Plugin = {
  name: 'crtools-no-prebuilt-decoders',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/gen\/decoders\.js$/ }, (args) => ({ path: args.path, namespace: 'crtools-no-decoders' }));
    build.onLoad({ filter: /.*/, namespace: 'crtools-no-decoders' }, () => ({ contents: 'export const files = undefined;\nexport const decoders = {};\nexport const encoders = {};\n', loader: 'js' }));
  },
};

/**
 * The bundles are compiled by load-bundle.ts through vm.Script without an import() handler
 * (which would load node's ES module machinery at each start): the build fails if one of
 * them holds an import() expression, which would throw when it ran.
 */
const noDynamicImport: Plugin = {
  name: 'crtools-no-dynamic-import',
  setup(build) {
    build.onEnd((result) => {
      for (const out of result.outputFiles ?? []) {
        if (/\.c?js$/.test(out.path) && /(?<![\w$.])import\(/.test(out.text)) {
          throw new Error(`${out.path} holds an import() expression, which load-bundle.ts's vm.Script cannot run: require the module instead`);
        }
      }
    });
  },
};

const common: Options = {
  outDir: 'dist/bin',
  // CommonJS: node's builtins are then required where a module is first initialised (an ESM
  // bundle imports all of them, crypto, net, dns, readline..., before any command runs), and
  // without ESM's module jobs and builtin facades
  format: ['cjs'],
  inject: ['src/package-url.ts'],
  target: 'node20',
  platform: 'node',
  dts: false,
  // (the library build before this one cleaned dist/; the two bundles below are built side by side)
  clean: false,
  splitting: false,
  // without comments and indentation (names kept, so stack traces still name functions), and
  // in ASCII (a comment's arrow made the 1 MB source a two-byte string): 1.0 MB -> 0.75 MB read
  // and compiled at each start, `criu check` ~10 ms less CPU
  minifyWhitespace: true,
  charset: 'ascii',
  noExternal: [/^@crtools\//, 'citty', 'consola'],
  external: ['protobufjs'],
};

/**
 * A command's bundle is written as the function Module.wrap would make of it: load-bundle.ts
 * compiles the text as read (the source an external string when @crtools/sys reads it), with no
 * wrapped copy made at each start. (Only load-bundle.ts runs it.)
 */
const asModuleFunction: Pick<Options, 'banner' | 'footer'> = {
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '\n})' },
};

export default defineConfig([
  // a command definition nobody uses (e.g. the kerndat bin's, beside the library a command uses) is dropped, and what only it imports
  { ...common, ...asModuleFunction, entry: { criu: 'src/criu-main.ts' }, esbuildPlugins: [packageUrls, cittyScule, noDynamicImport] },
  { ...common, ...asModuleFunction, entry: { crit: 'src/crit-main.ts' }, esbuildPlugins: [packageUrls, cittyScule, noPrebuiltDecoders, noDynamicImport] },
  { ...common, entry: { 'load-bundle': 'src/load-bundle.ts' }, esbuildPlugins: [noDynamicImport] },
]);
