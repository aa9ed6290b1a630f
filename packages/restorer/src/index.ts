// The restore side as a library: restore() is the engine (images → plan → processes);
// buildRestorePlan and restoreTree are its two halves, with the plan (plain data) between them.
export { restore, RESTORE_OPTIONS, shellJobPlan, inheritMap, type RestoreContext, type RestoreResult } from './restore.js';
export { buildRestorePlan, fxsaveFrom, type BuildPlanOptions } from './plan-from-images.js';
export * from './plan.js';
export { restoreTree, waitRoot, validatePlan, checkPidsFree, checkCpu, type RestoreTreeOptions, type RestoredTree } from './launch.js';
export { dispatchPatches, elfFacts, type MemoryPatch } from './dispatch.js';
export { RestoreErrorCode } from './errors.js';
