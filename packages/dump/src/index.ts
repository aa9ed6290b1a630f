export { checkDump, dump, DUMP_OPTIONS, type DumpCheck, type DumpContext, type DumpResult, type DumpStats } from './dump.js';
export { SeccompChains } from './seccomp.js';
export { linkParent, preDump, PRE_DUMP_OPTIONS, type PreDumpResult } from './pre-dump.js';
export { MEM_TRACK_FILE } from './mem-track.js';
export { dumpExternals, type DumpExternals } from './external.js';
