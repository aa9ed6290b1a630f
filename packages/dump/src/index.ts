export { dump, DUMP_OPTIONS, type DumpContext, type DumpResult, type DumpStats } from './dump.js';
