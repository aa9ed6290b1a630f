import type { Options } from 'tsup';

/**
 * The build every package shares: ESM for Node 20 into a cleaned dist/, with declarations
 * for `dts` (default: every entry). A package's tsup.config.ts names only its entries and
 * what differs.
 */
export function library(entry: NonNullable<Options['entry']>, extra: Options = {}): Options {
  return { entry, format: ['esm'], dts: true, clean: true, target: 'node20', ...extra };
}
