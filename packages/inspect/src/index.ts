export { fingerprint, treeOf, FINGERPRINT_SCHEMA, type Fingerprint, type TaskFingerprint } from './fingerprint.js';
export { compareFingerprints, sharingDifferences, flatten, fieldsPerTask, EXPECTED_CHANGES, NOT_CARRIED_YET, type Difference, type ExpectedChange } from './compare.js';
export { insideView } from './pidns.js';
export type { AreaPrint } from './memory.js';
export type { FdPrint } from './fds.js';
export type { TaskPrint, ThreadPrint } from './task.js';
