// Public surface of crit (re-exports only). The command cores take (input, output, options)
// and return an exit code; errors are CrtoolsErrors.
export { critCommand } from './command.js';
export { decodeImage, showCommand, decodeCommand, humanSize, type DecodeOptions } from './decode.js';
export { encodeImage, encodeCommand, type EncodeOptions } from './encode.js';
export { infoImage, infoCommand } from './info.js';
export { exploreDir, xCommand, type ExploreOptions } from './x.js';
export { VIEWS, collectView, renderView, viewJson, type View, type PsRow, type TaskFds, type TaskMems, type TaskRss, type TaskSocks, type TreeNode } from './explore.js';
export { ImageDir, type ImageLoader, type CritImage } from './image-dir.js';
export { pyDumps, pyString } from './pyjson.js';
export { parseJson, readImageDocument, JsonSyntaxError, type JsonValue } from './_images.js';
export { rawKind, describeRaw } from './raw.js';
