/**
 * What a file kind's dump side is: given one descriptor of a frozen task (as procfs reads
 * /proc/PID/fd and fdinfo), it says whether the descriptor is of its kind and, if so, how
 * descriptors sharing the same open file are told apart and what files.img entry the file gets.
 */
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { socketTableOf, type FdRecord } from '@crtools/procfs';
import { socketInfo, type SocketInfo } from '@crtools/sys';

/** One protobuf entry of an image, as @crtools/images writes it. */
export type Entry = Record<string, unknown>;

/** An image a kind writes besides files.img: its file name, magic and entries. */
export interface DumpImage {
  file: string;
  magic: string;
  entries: Entry[];
}

/** A kind's answer for a descriptor that is one of its own. */
export interface FdClaim {
  /** files.img type (fdinfo's `type`) */
  type: string;
  /** descriptors with the same key are compared with kcmp: the same open file shares one id */
  key: string;
  /** the files.img entry of a file met for the first time (and whatever else it keeps) */
  entry(id: number, flags: number): Entry;
}

export interface DumpKind {
  /**
   * For kinds met through descriptors: undefined (not of this kind), a claim, or an
   * UNSUPPORTED_FILE error thrown that names why this one of its kind cannot be taken.
   */
  claim?(pid: number, rec: FdRecord, flags: number): FdClaim | undefined;
  /** images this kind writes besides files.img (empty ones are left out) */
  images?(): DumpImage[];
  /** checks that need every task dumped (a socket's peer must be in the dump too), each refusal given to `refusals` */
  finish?(refusals: Refusals): void;
}

/**
 * A kind record's fown_entry as it leaves the kind: zeros. The table fills it in (src/dump/fown.ts)
 * for the open file's owner and signal, once for every kind.
 */
export const fown = (): Entry => ({ uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 });

/** The UNSUPPORTED_FILE error (exit 4) of a descriptor (what it names, when given), with the reason. */
export function refuseFd(pid: number, fd: number, message: string, target?: string): CrtoolsError {
  const who = `task ${pid} fd ${fd}${target === undefined ? '' : ` (${target})`}`;
  return new CrtoolsError('UNSUPPORTED_FILE', `${who}: ${message}`, { context: { pid, fd }, exitCode: ExitCode.UNSUPPORTED });
}

/** Name an unsupported descriptor as precisely as /proc allows (a socket by its protocol table). */
export function unsupported(pid: number, fd: number, target: string): CrtoolsError {
  const sock = /^socket:\[(\d+)\]$/.exec(target);
  const what = sock ? `${target} (${socketTableOf(pid, Number(sock[1])) ?? 'unknown socket'})` : target;
  return refuseFd(pid, fd, `${what} is not supported`);
}

/** A network namespace of the tree below its root's: its id in the images, a task living there, where it is opened. */
export interface NestedNetRef {
  id: number;
  pid: number;
  /** /proc/PID/ns/net of that task */
  path: string;
}

/**
 * The tree's network namespaces below its root's: by inode (undefined: the root's, or one
 * of no task of the tree), and all of them.
 */
export interface NestedNets {
  of(ino: bigint): NestedNetRef | undefined;
  all(): readonly NestedNetRef[];
  /** the inode of the root's network namespace (where a socket of no nested one was made) */
  root?: bigint;
}

/** The network namespace below the tree root's the socket at this descriptor was made in (SIOCGSKNS), or undefined. */
export function socketNestedNet(pid: number, rec: FdRecord, nets: NestedNets | undefined): NestedNetRef | undefined {
  if (!nets) return undefined;
  const s = socketOf(pid, rec);
  return s?.netns ? nets.of(BigInt(s.netns)) : undefined;
}

/** the socket of each descriptor record, read once however many socket kinds look at it */
const socketInfos = new WeakMap<FdRecord, SocketInfo>();

/**
 * The socket a descriptor opens (domain, type, protocol, addresses, through a pidfd_getfd
 * copy), for the socket kinds that claim by domain: undefined when it is no socket; one that
 * cannot be read is refused by name.
 */
export function socketOf(pid: number, rec: FdRecord): SocketInfo | undefined {
  if (!/^socket:\[\d+\]$/.test(rec.target)) return undefined;
  let s = socketInfos.get(rec);
  if (!s) {
    try {
      s = socketInfo(pid, rec.fd);
    } catch {
      throw unsupported(pid, rec.fd, rec.target);
    }
    socketInfos.set(rec, s);
  }
  return s;
}

/** A descriptor whose fdinfo lacks what its kind always shows there (a kernel too old, a race). */
export function noFdinfo(pid: number, rec: FdRecord): never {
  throw new CrtoolsError('DUMP_FDINFO', `task ${pid} fd ${rec.fd} (${rec.target}): /proc/${pid}/fdinfo/${rec.fd} lacks what it should show`, {
    context: { pid, fd: rec.fd }, exitCode: ExitCode.FAILED,
  });
}

/** The inode number in a `socket:[N]` / `pipe:[N]` target. */
export function inodeOf(target: string): number {
  return Number(/\[(\d+)\]/.exec(target)![1]);
}

/**
 * A kind of anon_inode file known by its /proc target alone (`anon_inode:[eventfd]`...): same
 * target and flags, possibly the same file (kcmp decides); `entry` makes its files.img entry.
 */
export function anonInodeKind(target: string, type: string, entry: (pid: number, rec: FdRecord, id: number, flags: number) => Entry): DumpKind {
  return {
    claim: (pid, rec, flags) => (rec.target !== target ? undefined : { type, key: `${target}:${flags}`, entry: (id) => entry(pid, rec, id, flags) }),
  };
}
