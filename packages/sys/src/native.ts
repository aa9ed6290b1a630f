import { nativeAddon, type NativeSysError } from '@crtools/common';

/** The whole native surface of @crtools/sys (native/sys.cc). */
export interface SysNative {
  /** the path, as this process sees it, of the file a kernel file handle designates on the filesystem mounted at mountDir */
  pathOfHandle(mountDir: string, type: number, handle: Buffer): string | NativeSysError;
}

export const addon = nativeAddon<SysNative>(import.meta.url, '@crtools/sys', 'sys');
