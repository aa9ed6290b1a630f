import { createRequire } from 'node:module';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { KerndatNative } from './native.js';

let cached: KerndatNative | undefined;
let injected: KerndatNative | undefined;

/** Use another binding (tests); pass undefined to go back to the real one. */
export function setNativeBinding(b: KerndatNative | undefined): void {
  injected = b;
}

/** The native binding, built by `node-gyp rebuild` into build/Release (next to src/ and dist/). */
export function native(): KerndatNative {
  if (injected) return injected;
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    cached = require('../build/Release/kerndat.node') as KerndatNative;
  } catch (e) {
    throw new CrtoolsError('KERNDAT_NO_NATIVE', `kerndat native addon is not built (run the package build): ${(e as Error).message.split('\n')[0]}`, {
      exitCode: ExitCode.FAILED,
      cause: e,
    });
  }
  return cached;
}
