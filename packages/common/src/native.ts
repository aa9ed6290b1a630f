import { createRequire } from 'node:module';
import { CrtoolsError } from './error.js';
import { ExitCode } from './exit-codes.js';

/**
 * The one way a package loads its native addon: `build/Release/NAME.node`, beside the
 * package's src/ and dist/, on first use; tests may inject another binding. A missing addon
 * is one NATIVE_MISSING error naming the package.
 */
export interface NativeAddon<T> {
  /** the binding (loaded on first use), or the injected one */
  get(): T;
  /** use another binding (tests); undefined goes back to the real one */
  inject(binding: T | undefined): void;
}

/** Every addon declared so far (by the modules loaded), for preloadNativeAddons. */
const declared: NativeAddon<unknown>[] = [];

/**
 * Load now every addon the loaded modules declared (a process about to serve a request pays
 * the loading ahead of it, e.g. a service worker waiting for its client). A missing one is
 * left to fail on its first real use.
 */
export function preloadNativeAddons(): void {
  for (const a of declared) {
    try {
      a.get();
    } catch {
      /* its first use reports it */
    }
  }
}

export function nativeAddon<T>(moduleUrl: string, pkg: string, name: string): NativeAddon<T> {
  let loaded: T | undefined;
  let injected: T | undefined;
  const addon: NativeAddon<T> = {
    get(): T {
      if (injected) return injected;
      if (loaded) return loaded;
      try {
        loaded = createRequire(moduleUrl)(`../build/Release/${name}.node`) as T;
      } catch (e) {
        throw new CrtoolsError('NATIVE_MISSING', `${pkg}: native addon ${name}.node is not built (run the package build): ${(e as Error).message.split('\n')[0]}`, {
          exitCode: ExitCode.FAILED,
          context: { package: pkg },
          cause: e,
        });
      }
      return loaded;
    },
    inject(binding: T | undefined): void {
      injected = binding;
    },
  };
  declared.push(addon as NativeAddon<unknown>);
  return addon;
}

/** How every addon reports a failed system call: the errno (positive) and the call's name. */
export interface NativeSysError {
  errno: number;
  syscall: string;
}

export function isNativeSysError(v: unknown): v is NativeSysError {
  return typeof v === 'object' && v !== null && typeof (v as NativeSysError).errno === 'number' && typeof (v as NativeSysError).syscall === 'string';
}
