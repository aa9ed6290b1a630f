/** pidfd facts both sides use. */

/** PIDFD_THREAD (6.9+): the pidfd names one thread; its open flags show it as O_EXCL */
export const PIDFD_THREAD = 0o200;
