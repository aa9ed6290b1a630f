export * from './types.js';
export { probeKerndat, kernelIdentity, PROBES, type Probe, type ProbeOptions } from './probe.js';
export { loadKerndat, readCache, writeCache, cachePathOf, DEFAULT_CACHE_PATH, type LoadOptions, type LoadResult } from './cache.js';
export { parseKerndat, stringifyKerndat } from './json.js';
export { parseVdsoElf } from './probes/vdso.js';
export { xfeatureNames } from './probes/cpu.js';
export { uffdFeatureNames } from './probes/memory.js';
export { NO_SUCH_FS_EXIT } from './probes/files.js';
export { setNativeBinding } from './load-native.js';
export type { KerndatNative } from './native.js';
export * from './judge.js';
// (the `kerndat` bin's command, ./cli.ts, is not re-exported: a library user such as `criu check`
// would load consola and citty's command with it, ~20 ms of start-up, for nothing)
export { readKerndatFromDescriptor, readKerndatArgument, opensKerndatDocument, pipeWriters, type DescriptorDocOptions } from './input.js';
