/**
 * The CRIU release whose command line, RPC answers and image format crtools
 * implements. Tools decide what they may ask of `criu` from it (runc and
 * go-criu compute major*10000 + minor*100 + sublevel, podman wants 31100+),
 * so it is what `criu --version` and an RPC VERSION request report; crtools'
 * own version is reported beside it, never in its place.
 */
export const CRIU_VERSION = { major: 4, minor: 2, sublevel: 0 } as const;

/** "4.2" (the sublevel only when it is not 0), as CRIU prints its version. */
export const CRIU_VERSION_TEXT = `${CRIU_VERSION.major}.${CRIU_VERSION.minor}${CRIU_VERSION.sublevel ? `.${CRIU_VERSION.sublevel}` : ''}`;
