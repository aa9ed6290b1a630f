// crit as a library (re-exports only): the cores take (input, output, options) and return an
// exit code; errors are CrtoolsErrors. The `crit` command (packages/cli) only parses flags.
export { decodeImage, humanSize, withOutput, type DecodeOptions } from './decode.js';
export { encodeImage, type EncodeOptions } from './encode.js';
export { infoImage } from './info.js';
export { exploreDir, type ExploreOptions } from './x.js';
export { VIEWS, collectView, renderView, viewJson, type View, type PsRow, type TaskFds, type TaskMems, type TaskRss, type TaskSocks, type TreeNode } from './explore/index.js';
export { ImageDir, type ImageLoader, type CritImage } from './image-dir.js';
export { pyDumps, pyString } from './pyjson.js';
export { parseJson, readImageDocument, JsonSyntaxError, type JsonValue } from './_images.js';
export { rawKind, describeRaw } from './raw.js';
export { stdinInput, type Input } from './io.js';
export { usage } from './errors.js';
