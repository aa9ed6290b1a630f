/**
 * userfaultfd as the dump uses it for dirty tracking: the API handshake and the registration of a
 * task's areas for write-protect. A userfaultfd acts on the mm of the task that created it, whoever
 * holds the descriptor: the dumper takes the task's copy (pidfd_getfd) and registers its areas.
 */
import { addon, orThrow } from './native.js';
import { isNativeSysError, type NativeSysError } from '@crtools/common';

/** UFFD_FEATURE_* bits the tracking asks for (include/uapi/linux/userfaultfd.h). */
export const UFFD_FEATURE = {
  WP_UNPOPULATED: 1n << 13n,
  WP_ASYNC: 1n << 15n,
} as const;

/** UFFDIO_REGISTER modes. */
export const UFFDIO_REGISTER_MODE = { MISSING: 1n, WP: 2n, MINOR: 4n } as const;

/** The UFFDIO_API handshake on a userfaultfd: the features granted (throws a syscall error if refused). */
export function uffdApi(fd: number, features: bigint): bigint {
  return orThrow(addon.get().uffdApi(fd, features), 'ioctl', { message: 'UFFDIO_API' });
}

/** UFFDIO_REGISTER of [start, end) in `mode`: undefined when done, else the kernel's refusal (EBUSY: another userfaultfd has it; EINVAL: not a kind the kernel registers). */
export function uffdRegister(fd: number, start: bigint, end: bigint, mode: bigint): NativeSysError | undefined {
  const r = addon.get().uffdRegister(fd, start, end - start, mode);
  return isNativeSysError(r) ? r : undefined;
}

/** UFFDIO_UNREGISTER of [start, end): undefined when done, else why not. */
export function uffdUnregister(fd: number, start: bigint, end: bigint): NativeSysError | undefined {
  const r = addon.get().uffdUnregister(fd, start, end - start);
  return isNativeSysError(r) ? r : undefined;
}

/** UFFD_EVENT_* of a uffd_msg (include/uapi/linux/userfaultfd.h). */
export const UFFD_EVENT = { PAGEFAULT: 0x12, FORK: 0x13, REMAP: 0x14, REMOVE: 0x15, UNMAP: 0x16 } as const;

/** The non-cooperative events a lazy restore asks for (UFFD_FEATURE_EVENT_FORK | REMAP | REMOVE | UNMAP). */
export const UFFD_NONCOOP_EVENTS = (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 6n);

/** One uffd_msg, decoded. */
export type UffdMessage =
  | { event: typeof UFFD_EVENT.PAGEFAULT; flags: bigint; address: bigint }
  | { event: typeof UFFD_EVENT.FORK; ufd: number }
  | { event: typeof UFFD_EVENT.REMAP; from: bigint; to: bigint; len: bigint }
  | { event: typeof UFFD_EVENT.REMOVE | typeof UFFD_EVENT.UNMAP; start: bigint; end: bigint }
  | { event: number };

/**
 * The messages queued on a userfaultfd (at most `max`), without waiting: [] when none is queued,
 * null when the descriptor reached its end (the mm is gone). Throws on other errors.
 */
export function uffdReadMessages(fd: number, max = 64): UffdMessage[] | null {
  const r = addon.get().uffdRead(fd, max);
  if (r === null) return [];
  const b = orThrow(r, 'read', { message: 'userfaultfd' });
  if (b.length === 0) return null;
  const out: UffdMessage[] = [];
  for (let o = 0; o + 32 <= b.length; o += 32) {
    const event = b[o]!;
    const a = o + 8;
    if (event === UFFD_EVENT.PAGEFAULT) out.push({ event, flags: b.readBigUInt64LE(a), address: b.readBigUInt64LE(a + 8) });
    else if (event === UFFD_EVENT.FORK) out.push({ event, ufd: b.readUInt32LE(a) });
    else if (event === UFFD_EVENT.REMAP) out.push({ event, from: b.readBigUInt64LE(a), to: b.readBigUInt64LE(a + 8), len: b.readBigUInt64LE(a + 16) });
    else if (event === UFFD_EVENT.REMOVE || event === UFFD_EVENT.UNMAP) out.push({ event, start: b.readBigUInt64LE(a), end: b.readBigUInt64LE(a + 8) });
    else out.push({ event });
  }
  return out;
}

/** UFFDIO_COPY of `src` to `dst`: the bytes copied, or the kernel's refusal (EEXIST: already there; ESRCH/ENOSPC: the mm is gone; EAGAIN: the layout is changing). */
export function uffdCopy(fd: number, dst: bigint, src: Buffer): number | NativeSysError {
  return addon.get().uffdCopy(fd, dst, src, false);
}

/** UFFDIO_ZEROPAGE of [start, end): the bytes done, or the kernel's refusal. */
export function uffdZeroPage(fd: number, start: bigint, end: bigint): number | NativeSysError {
  return addon.get().uffdZero(fd, start, end - start);
}

/** poll(2) for input on each descriptor: the revents (POLLIN 1, POLLERR 8, POLLHUP 16), in order. */
export function pollInput(fds: number[], timeoutMs: number): number[] {
  return orThrow(addon.get().pollIn(fds, timeoutMs), 'poll');
}
