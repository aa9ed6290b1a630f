import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CrtoolsError, ExitCode, isNativeSysError, nativeAddon } from '@crtools/common';
import type { RestorerNative, NativeSysError } from './native-api.js';

export type { RestorerNative, NativeSysError, LaunchArgs, WaitResult } from './native-api.js';

const addon = nativeAddon<RestorerNative>(import.meta.url, '@crtools/restorer', 'restorer');
let blob: Buffer | undefined;

/** The native binding (build/Release/restorer.node); tests may inject another one with setNative. */
export function loadNative(): RestorerNative {
  return addon.get();
}

export function setNative(n: RestorerNative | undefined): void {
  addon.inject(n);
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

export const isSysError: (v: unknown) => v is NativeSysError = isNativeSysError;
