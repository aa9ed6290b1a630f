import { nativeAddon, syscallError } from '@crtools/common';
import type { ParasiteNative } from './native.js';

const addon = nativeAddon<ParasiteNative>(import.meta.url, '@crtools/parasite', 'parasite');

/** Use another binding (tests); pass undefined to go back to the real one. */
export function setNativeBinding(b: ParasiteNative | undefined): void {
  addon.inject(b);
}

/** The native binding, built by `node-gyp rebuild` into build/Release. */
export function native(): ParasiteNative {
  return addon.get();
}

/** Throw a Node-shaped syscall error when a native call returned -errno. */
export function check(r: number, syscall: string, pid?: number): number {
  if (r < 0) throw syscallError(syscall, -r, pid === undefined ? {} : { pid });
  return r;
}
