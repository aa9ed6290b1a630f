import { createRequire } from 'node:module';
import { CrtoolsError, ExitCode, syscallError } from '@crtools/common';
import type { ParasiteNative } from './native.js';

let cached: ParasiteNative | undefined;
let injected: ParasiteNative | undefined;

/** Use another binding (tests); pass undefined to go back to the real one. */
export function setNativeBinding(b: ParasiteNative | undefined): void {
  injected = b;
}

/** The native binding, built by `node-gyp rebuild` into build/Release. */
export function native(): ParasiteNative {
  if (injected) return injected;
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    cached = require('../build/Release/parasite.node') as ParasiteNative;
  } catch (e) {
    throw new CrtoolsError('PARASITE_NO_NATIVE', `parasite native addon is not built (run the package build): ${(e as Error).message.split('\n')[0]}`, {
      exitCode: ExitCode.FAILED,
      cause: e,
    });
  }
  return cached;
}

/** Throw a Node-shaped syscall error when a native call returned -errno. */
export function check(r: number, syscall: string, pid?: number): number {
  if (r < 0) throw syscallError(syscall, -r, pid === undefined ? {} : { pid });
  return r;
}
