export { fileHandlePath, type FileHandle } from './handles.js';
export type { SysNative } from './native.js';
