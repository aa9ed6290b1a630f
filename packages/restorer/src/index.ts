export * from './plan.js';
export { restoreTree, waitRoot, validatePlan, checkPidsFree, checkCpu, type RestoreTreeOptions, type RestoredTree } from './launch.js';
export { encodeBody, finishPlan, regionLayout, specialTargets, STACK_SIZE, type SpecialMapping, type RegionLayout } from './encode.js';
export { findHoles, currentSpecials, selfMappings, type Interval } from './hole.js';
export { RestoreErrorCode, restoreError } from './errors.js';
export { PLAN_MAGIC, PLAN_VERSION, STEPS, CONST, fieldsOf, recordSize, fieldOffset, PlanWriter } from './layout.js';
export { loadNative, setNative, loadBlob } from './native.js';
export type { RestorerNative, LaunchArgs, WaitResult, NativeSysError } from './native-api.js';
export { dispatchPatches, elfFacts, selfObjects, type MemoryPatch } from './dispatch.js';
