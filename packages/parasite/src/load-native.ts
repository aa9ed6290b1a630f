import { isNativeSysError, nativeAddon, syscallError, type NativeSysError } from '@crtools/common';
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

/**
 * The value of a native call, or a Node-shaped syscall error: named as the caller knows the
 * call (e.g. 'ptrace(PTRACE_SEIZE)'), with the errno the native layer reported.
 */
export function check<T>(r: T | NativeSysError, syscall: string, pid?: number): T {
  if (isNativeSysError(r)) throw syscallError(syscall, r.errno, pid === undefined ? {} : { pid });
  return r;
}
