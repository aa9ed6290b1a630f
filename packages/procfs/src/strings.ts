import { readProcBytes, type ProcOptions, type Target } from './read.js';

/** Split NUL-separated data (cmdline, environ) into strings; a trailing NUL ends the last one. */
export function parseNulSeparated(data: Uint8Array | string): string[] {
  const s = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  if (s.length === 0) return [];
  const parts = s.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function readCmdline(target: Target, opts?: ProcOptions): string[] {
  return parseNulSeparated(readProcBytes(target, 'cmdline', opts).data);
}

/** Environment as strings "KEY=value", in order. */
export function readEnviron(target: Target, opts?: ProcOptions): string[] {
  return parseNulSeparated(readProcBytes(target, 'environ', opts).data);
}
