/** @crtools/files/plan: the files of a restore plan, by kind (src/kinds/<kind>/plan.ts). */
export { FilePlanTable, type FilePlan, type FilePlanOptions, type InheritFilePlan } from './table.js';
export { badImage, big, firstEntry, missingFile, readImage, refuse, type Obj, type PlanContext, type PlanKind } from './kind.js';
export type { FileBase, FownPlan, GhostPlan, GhostExtent, GhostTime, RegFilePlan } from '../kinds/reg/plan.js';
export type { PipeFilePlan } from '../kinds/pipe/plan.js';
export type { EventfdFilePlan } from '../kinds/eventfd/plan.js';
export type { SignalfdFilePlan } from '../kinds/signalfd/plan.js';
export type { TimerFilePlan } from '../kinds/timerfd/plan.js';
export type { EpollFilePlan, EpollTarget } from '../kinds/epoll/plan.js';
export type { InotifyFilePlan } from '../kinds/inotify/plan.js';
export type { UnixBoundFilePlan, UnixPairFilePlan } from '../kinds/unix/plan.js';
export type { SockoptCall } from '../sockopts/plan.js';
export type { InetFilePlan, TcpFilePlan, TcpStreamPlan } from '../kinds/inet/plan.js';
export { NetworkLock, networkLockFromImage, type NetworkLockMethod, type LockedConnection } from '../kinds/inet/netlock.js';
export type { MemfdFilePlan } from '../kinds/memfd/plan.js';
export type { PidfdFilePlan } from '../kinds/pidfd/plan.js';
export type { FifoFilePlan } from '../kinds/fifo/plan.js';
export { MemfdPlans } from '../kinds/memfd/plan.js';
export { SEAL, MFD, MEMFD_PREFIX } from '../kinds/memfd/facts.js';
