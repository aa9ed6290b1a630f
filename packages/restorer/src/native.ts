import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { RestorerNative, NativeSysError } from './native-api.js';

export type { RestorerNative, NativeSysError, LaunchArgs, WaitResult } from './native-api.js';

let binding: RestorerNative | undefined;
let blob: Buffer | undefined;

/** The native binding; tests may inject another one with setNative. */
export function loadNative(): RestorerNative {
  if (!binding) {
    const require = createRequire(import.meta.url);
    try {
      binding = require('../build/Release/restorer.node') as RestorerNative;
    } catch (e) {
      throw new CrtoolsError('RESTORER_NATIVE_MISSING', 'restorer: native addon not built (run the package build)', {
        exitCode: ExitCode.FAILED,
        cause: e,
      });
    }
  }
  return binding;
}

export function setNative(n: RestorerNative | undefined): void {
  binding = n;
}

/** The freestanding restorer blob built into blobs/restorer.bin. */
export function loadBlob(): Buffer {
  if (!blob) {
    const path = fileURLToPath(new URL('../blobs/restorer.bin', import.meta.url));
    try {
      blob = readFileSync(path);
    } catch (e) {
      throw new CrtoolsError('RESTORER_BLOB_MISSING', `restorer: blob ${path} missing (run the package build)`, {
        exitCode: ExitCode.FAILED,
        cause: e,
      });
    }
  }
  return blob;
}

export function isSysError(v: unknown): v is NativeSysError {
  return typeof v === 'object' && v !== null && typeof (v as NativeSysError).errno === 'number' && 'syscall' in v;
}
