export { dump, type DumpOptions, type DumpResult } from './dump.js';
export { DumpLog } from './log.js';
