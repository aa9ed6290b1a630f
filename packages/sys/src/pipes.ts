/** Pipes and descriptors: a pipe of a chosen capacity, splice until done, a look into a pipe, close. */
import { addon, orThrow, type FailureContext } from './native.js';

/** The bytes buffered in a pipe (through any fd of ours on it), without consuming them, and its capacity. */
export function peekPipe(fd: number): { size: number; data: Buffer } {
  return orThrow(addon.get().peekPipe(fd), 'tee');
}

export interface Pipe {
  rd: number;
  wr: number;
  /** what the pipe holds (F_GETPIPE_SZ): the size asked for when the kernel allowed it */
  capacity: number;
}

/** A pipe (both ends O_CLOEXEC) with room for `size` bytes when the kernel allows it. */
export function openPipe(size: number, context: FailureContext = {}): Pipe {
  const [rd, wr, capacity] = orThrow(addon.get().pipe(size), 'pipe2', context);
  return { rd, wr, capacity };
}

/** splice(2) from a pipe into fdOut (at its file position) until len bytes moved or the pipe ran dry; the bytes moved. */
export function spliceAll(fdIn: number, fdOut: number, len: number, context: FailureContext = {}): number {
  return orThrow(addon.get().spliceAll(fdIn, fdOut, len), 'splice', context);
}

/**
 * splice(2) from a pipe that another process fills (a tracee's vmsplice) into fdOut, up to len
 * bytes, as they come: an empty pipe is waited for at most waitMs. `moved` below len: nothing
 * came for waitMs (the writer may be done, stopped or slow: the caller asks), or `eof`, the
 * pipe's last writer is gone.
 */
export function spliceSome(fdIn: number, fdOut: number, len: number, waitMs: number, context: FailureContext = {}): { moved: number; eof: boolean } {
  return orThrow(addon.get().spliceSome(fdIn, fdOut, len, waitMs), 'splice', context);
}

/** close(2), whatever it says (the descriptor is gone either way). */
export function closeFd(fd: number): void {
  addon.get().closeFd(fd);
}

/** Grow (or shrink) a pipe to hold size bytes (F_SETPIPE_SZ); the capacity it then has. */
export function setPipeSize(fd: number, size: number, context: FailureContext = {}): number {
  return orThrow(addon.get().setPipeSize(fd, size), 'fcntl', context);
}
