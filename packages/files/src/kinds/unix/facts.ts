import { SOCK_TYPE } from '@crtools/images/facts';

/** the unix socket types taken and made again: stream, datagram, seqpacket */
export const UNIX_TYPES: readonly number[] = [SOCK_TYPE.STREAM, SOCK_TYPE.DGRAM, SOCK_TYPE.SEQPACKET];
