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
