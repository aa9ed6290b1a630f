/** Test-side imports in one place. */
export * from '../src/index.js';
export { toHex, isCrtoolsError, hexReplacer } from '@crtools/common';
