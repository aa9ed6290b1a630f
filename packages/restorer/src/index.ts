// The restore side as a library: restore() is the engine (images → plan → processes);
// buildRestorePlan and restoreTree are its two halves, with the plan (plain data) between them.
export { restore, RESTORE_OPTIONS, shellJobPlan, inheritMap, type RestoreContext, type RestoreResult, type RestoreStats } from './restore.js';
export { checkExternalKind, restoreExternals, type NetExternals } from './net-externals.js';
export { buildRestorePlan, type BuildPlanOptions } from './plan/build.js';
export { fxsaveFrom } from './plan/threads.js';
export * from './plan.js';
export { restoreTree, waitRoot, validatePlan, checkPidsFree, checkCpu, checkGuards, type RestoreTreeOptions, type RestoredTree } from './launch.js';
export { dispatchPatches, elfFacts, type MemoryPatch } from './dispatch.js';
export { RestoreErrorCode } from './errors.js';
export { lazyPages, requireLazyPages, type LazyPagesOptions, type LazyPagesResult } from './lazy-pages.js';
