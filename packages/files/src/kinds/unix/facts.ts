import { SOCK_TYPE } from '@crtools/images/facts';

/** the unix socket types taken and made again: stream, datagram, seqpacket */
export const UNIX_TYPES: readonly number[] = [SOCK_TYPE.STREAM, SOCK_TYPE.DGRAM, SOCK_TYPE.SEQPACKET];

/** SCM_RIGHTS: a control message carrying descriptors; at most SCM_MAX_FD of them in one message */
export const SCM_RIGHTS = 1;
export const SCM_MAX_FD = 253;

/**
 * The kinds of plan files a queued message may carry in flight: those the restorer has made by
 * the time it sends the queues again (a pidfd is opened later, an epoll needs its owner's
 * descriptors, a unix socket in flight would need its own queue first).
 */
export const INFLIGHT_KINDS: readonly string[] = ['reg', 'memfd', 'pipe-r', 'pipe-w', 'fifo', 'eventfd', 'signalfd', 'timerfd', 'inotify', 'inet'];
