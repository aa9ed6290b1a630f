/**
 * An open file's I/O signal settings, as files.img's fown_entry keeps them for every kind:
 * the owner SIGIO/SIGURG go to (F_SETOWN / F_SETOWN_EX: a thread, a process or a process
 * group), the uids recorded with that owner, and the signal (F_SETSIG). O_ASYNC itself stays
 * in the entry's flags. Read once per open file through a copy of the task's descriptor.
 *
 * What goes in follows CRIU: the signal always (0 for O_PATH files, which have none); the
 * owner, its pid type (the F_OWNER_* value F_GETOWN_EX gives: TID 0, PID 1, PGRP 2) and the
 * uid/euid from F_GETOWNER_UIDS only when there is an owner, zeros otherwise.
 */
import { probeFile } from '@crtools/sys';
import { overflowId, readStatus, UNMAPPED_ID, type FdRecord } from '@crtools/procfs';
import { refuseFd, type Entry } from './kind.js';

export const O_ASYNC = 0o20000;
export const O_PATH = 0o10000000;

/** F_OWNER_* of F_SETOWN_EX / F_GETOWN_EX */
export const F_OWNER = { TID: 0, PID: 1, PGRP: 2 } as const;

/** The ids of the dumped tree an owner may name: they exist again after restore. */
export interface DumpedIds {
  /** process ids and thread ids (F_OWNER_PID, F_OWNER_TID) */
  tasks: ReadonlySet<number>;
  /** process groups of the tree's tasks (F_OWNER_PGRP) */
  groups: ReadonlySet<number>;
  /** the tree's root task (the one that exists when the restore opens the files) */
  root?: number;
  /** each process of the tree (not its threads): its session, group and controlling terminal (/proc/PID/stat) */
  sessions?: ReadonlyMap<number, TaskSession>;
  /** -j/--shell-job: the root's session is led from outside the tree */
  shellJob?: boolean;
  /**
   * A tree in a pid namespace of its own: the id the images carry for a task, thread or (group)
   * process group crtools sees as `id` (the one inside the namespace)
   */
  innerId?: (id: number, group: boolean) => number;
  /**
   * A tree in a user namespace of its own: a uid / gid crtools sees as the id inside it
   * (UNMAPPED_ID where its maps have none): the images keep owners so, as CRIU writes them
   */
  uidInside?: (id: number) => number;
  gidInside?: (id: number) => number;
}

/**
 * A file's owner (`uid`, `gid` as crtools sees them) as the images keep it: the ids inside the
 * tree's user namespace when it has one (as CRIU writes a socket file's, a terminal's, an
 * unlinked file's or a memfd's owner). An owner the namespace does not map is refused (`refuse`
 * names the file: the restore, made inside it, could not give it back), or, with no `refuse`
 * (a terminal's: a pty master's is the ptmx node's, which the restore does not give), written
 * as the overflow ids the tasks see it as (/proc/sys/kernel/overflowuid), as CRIU writes it.
 */
export function ownerInside(ids: DumpedIds | undefined, uid: number, gid: number, refuse?: (why: string) => Error): { uid: number; gid: number } {
  if (!ids?.uidInside || !ids.gidInside) return { uid, gid };
  const u = ids.uidInside(uid);
  const g = ids.gidInside(gid);
  if ((u === UNMAPPED_ID || g === UNMAPPED_ID) && !refuse) {
    return { uid: u === UNMAPPED_ID ? overflowId('uid') : u, gid: g === UNMAPPED_ID ? overflowId('gid') : g };
  }
  if (u === UNMAPPED_ID || g === UNMAPPED_ID) {
    throw refuse!(`its owner (${u === UNMAPPED_ID ? `uid ${uid}` : `gid ${gid}`}) is not mapped in the tree's user namespace: the restore, made inside it, could not give it back`);
  }
  return { uid: u, gid: g };
}

/** A process's session, group, controlling terminal (stat's tty_nr, 0: none) and that terminal's foreground group (tpgid, -1: none). */
export interface TaskSession {
  sid: number;
  pgrp: number;
  ttyNr: number;
  tpgid: number;
}

/** fown_entry of the files no one asked signals of */
export const noFown = (): Entry => ({ uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 });

/** The real and effective uid of a task (/proc/PID/status `Uid:` real, effective, saved, fs). */
function taskUids(pid: number): [number, number] {
  const uid = readStatus(pid).Uid;
  return uid && uid.length >= 2 ? [uid[0]!, uid[1]!] : [0, 0];
}

const ownerName = (type: number, pid: number) => (type === F_OWNER.PGRP ? `process group ${pid}` : type === F_OWNER.TID ? `thread ${pid}` : `process ${pid}`);

/**
 * The fown_entry of the open file behind task pid's descriptor (flags: its F_GETFL flags).
 * An owner outside the dumped tree (`ids`) is refused by name: it would not exist after restore.
 * Without `ids` (the tree unknown) any owner is refused.
 */
export function readFown(pid: number, rec: FdRecord, flags: number, ids?: DumpedIds): Entry {
  if (flags & O_PATH) return noFown();
  let p;
  try {
    p = probeFile(pid, rec.fd);
  } catch {
    return noFown(); // closed meanwhile: the kind's own reading says so
  }
  const signum = p.sig > 0 ? p.sig : 0;
  if (p.ownerPid <= 0 || p.ownerType < 0) return { ...noFown(), signum };
  const type = p.ownerType;
  const known = type === F_OWNER.PGRP ? ids?.groups : ids?.tasks;
  if (!known?.has(p.ownerPid)) {
    throw refuseFd(pid, rec.fd, `the owner of its I/O signals (F_SETOWN_EX: ${ownerName(type, p.ownerPid)}) is not in the dumped tree: it would not exist after restore`, rec.target);
  }
  // F_GETOWNER_UIDS needs CONFIG_CHECKPOINT_RESTORE (CRIU fails the dump without it). Without it
  // the uids are those the owner was most likely set with: the task holding the descriptor's,
  // as F_SETOWN records the caller's. The uids only decide whether the owner may be signalled.
  const [hostUid, hostEuid] = p.ownerUid >= 0 && p.ownerEuid >= 0 ? [p.ownerUid, p.ownerEuid] : taskUids(pid);
  // (inside the tree's user namespace when it has one, as CRIU writes them; the tasks' own ids,
  // which it maps)
  const inside = (id: number) => {
    const v = ids?.uidInside ? ids.uidInside(id) : id;
    if (v === UNMAPPED_ID) throw refuseFd(pid, rec.fd, `the uid recorded with the owner of its I/O signals (${id}) is not mapped in the tree's user namespace: the restore, made inside it, could not give it back`, rec.target);
    return v;
  };
  const uid = inside(hostUid);
  const euid = inside(hostEuid);
  const owner = ids?.innerId ? ids.innerId(p.ownerPid, type === F_OWNER.PGRP) : p.ownerPid;
  return { uid, euid, signum, pid_type: type, pid: owner };
}

/** Whether a fown_entry says anything (an owner or a signal). */
export const hasFown = (f: Entry | undefined): boolean => !!f && (Number(f.pid ?? 0) !== 0 || Number(f.signum ?? 0) !== 0);
