export * from './types.js';
export { probeKerndat, kernelIdentity, PROBES, type Probe, type ProbeOptions } from './probe.js';
export { loadKerndat, readCache, writeCache, cachePathOf, DEFAULT_CACHE_PATH, type LoadOptions, type LoadResult } from './cache.js';
export { parseKerndat, stringifyKerndat } from './json.js';
export { parseVdsoElf } from './probes/vdso.js';
export { xfeatureNames } from './probes/cpu.js';
export { setNativeBinding } from './load-native.js';
export type { KerndatNative } from './native.js';
