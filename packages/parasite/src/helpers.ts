import { isNativeSysError, syscallError } from '@crtools/common';
import { native } from './load-native.js';

/** Start a program as a grandchild in its own session (not a child of Node); returns its pid. */
export function spawnDetached(path: string, argv: string[]): number {
  const r = native().spawnDetached(path, argv);
  if (isNativeSysError(r)) throw syscallError('fork', r.errno, { path });
  return r;
}
