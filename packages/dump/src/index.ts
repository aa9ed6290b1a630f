export { checkDump, dump, DUMP_OPTIONS, type DumpCheck, type DumpContext, type DumpResult, type DumpStats } from './dump.js';
export { SeccompChains } from './seccomp.js';
