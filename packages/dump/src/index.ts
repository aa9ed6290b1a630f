export { dump, DUMP_OPTIONS, type DumpContext, type DumpResult } from './dump.js';
