/** @crtools/files/dump: the files of a dump, by kind (src/kinds/<kind>/dump.ts). */
export { FileTable, type FileIds } from './table.js';
export type { NsIdOf } from '../kinds/nsfs/dump.js';
export { unsupported, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim, type NestedNets, type NestedNetRef } from './kind.js';
export type { PendingShmem } from '../kinds/memfd/dump.js';
export type { InetDumpOptions } from '../kinds/inet/dump.js';
export { TcpRepairs } from '../kinds/inet/repair.js';
export { TtyQueueHold } from '../kinds/tty/queues.js';
export { NetworkLock, networkLockImageValue, withoutLockRules, parseNetworkLock, type NetworkLockMethod, type LockedConnection } from '../kinds/inet/netlock.js';
export { LinkRemaps } from '../kinds/reg/dump.js';
export { irmapLookup } from './irmap.js';
export type { IrmapLookup } from '../kinds/inotify/dump.js';
export { tunLinkKey, type TunLinks } from '../kinds/tun/dump.js';
