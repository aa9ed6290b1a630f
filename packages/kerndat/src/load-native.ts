import { nativeAddon } from '@crtools/common';
import type { KerndatNative } from './native.js';

const addon = nativeAddon<KerndatNative>(import.meta.url, '@crtools/kerndat', 'kerndat');

/** Use another binding (tests); pass undefined to go back to the real one. */
export function setNativeBinding(b: KerndatNative | undefined): void {
  addon.inject(b);
}

/** The native binding, built by `node-gyp rebuild` into build/Release. */
export function native(): KerndatNative {
  return addon.get();
}
