/**
 * JSON text exactly as Python's `json.dump` writes it (what CRIU's crit prints): the one
 * implementation is @crtools/images' (pyjson.ts); crit takes it from there.
 */
export { encodeBytes, PyFloat, pyDumps, pyNumber, pyString } from './_images.js';
