/**
 * What a client that is not root may ask of a criu that is (criu service run by root, reached by
 * other users): dump only a tree it could ptrace itself — every task's real, effective, saved
 * and filesystem ids are the client's — and restore only tasks that were and will be itself —
 * every task's credentials in the images are the client's. The client is known by SO_PEERCRED.
 * (The kernel's own ptrace check also looks at the dumpable flag and capabilities; a task with
 * ids of the client's but made non-dumpable is not refused here: the parasite would still reach
 * it, so such a client could read memory its task chose to hide. Tracked with issue 13.)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { readImageFileSync } from '@crtools/images';

/** The client as SO_PEERCRED tells it. */
export interface Peer {
  pid: number;
  uid: number;
  gid: number;
}

/** Checks apply to a client that is neither root nor us (we could not do more than it anyway). */
export function needsAccessCheck(peer: Peer): boolean {
  return peer.uid !== 0 && peer.uid !== process.getuid?.();
}

function denied(what: string, pid?: number): CrtoolsError {
  return new CrtoolsError('RPC_ACCESS_DENIED', what, { exitCode: ExitCode.FAILED, context: pid === undefined ? {} : { pid } });
}

/** The four uids and four gids of /proc/PID/status (real, effective, saved, filesystem). */
function idsOf(pid: number): { uids: number[]; gids: number[] } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = (k: string) => (new RegExp(`^${k}:\\s+(.*)$`, 'm').exec(st)?.[1] ?? '').split(/\s+/).map(Number);
  return { uids: line('Uid'), gids: line('Gid') };
}

/** The tree under pid (children of every thread), pid first. */
function treeOf(pid: number): number[] {
  const out = [pid];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* gone */
    }
    for (const k of kids) out.push(...treeOf(k));
  }
  return out;
}

/** DUMP by a client that is not root: every task of the tree must be wholly the client's. */
export function checkDumpAccess(peer: Peer, pid: number): void {
  for (const t of treeOf(pid)) {
    let ids;
    try {
      ids = idsOf(t);
    } catch {
      continue; // gone: the dump will say so
    }
    if (!ids.uids.every((u) => u === peer.uid) || !ids.gids.every((g) => g === peer.gid)) {
      throw denied(`task ${t} is not the client's (uid ${peer.uid}, gid ${peer.gid}): a client that is not root may dump only its own processes`, t);
    }
  }
}

/** RESTORE by a client that is not root: every task in the images must have been the client. */
export function checkRestoreAccess(peer: Peer, imagesDir: string): void {
  let pids: number[];
  try {
    const tree = readImageFileSync(path.join(imagesDir, 'pstree.img'));
    pids = tree.entries.map((e) => Number((e as { pid: number }).pid));
  } catch {
    return; // no readable checkpoint: the restore will say so
  }
  for (const pid of pids) {
    let creds: Record<string, number> | undefined;
    try {
      const core = readImageFileSync(path.join(imagesDir, `core-${pid}.img`));
      creds = (core.entries[0] as { thread_core?: { creds?: Record<string, number> } }).thread_core?.creds;
    } catch {
      creds = undefined;
    }
    if (!creds) throw denied(`the checkpoint's task ${pid} has no credentials to check: a client that is not root may restore only its own processes`, pid);
    const uids = [creds.uid, creds.euid, creds.suid, creds.fsuid];
    const gids = [creds.gid, creds.egid, creds.sgid, creds.fsgid];
    if (!uids.every((u) => u === peer.uid) || !gids.every((g) => g === peer.gid)) {
      throw denied(`the checkpoint's task ${pid} ran as uid ${creds.uid}, gid ${creds.gid}: a client that is not root may restore only its own processes (uid ${peer.uid}, gid ${peer.gid})`, pid);
    }
  }
}

/**
 * A directory criu writes into for a client that is not root (images, work dir): it must be the
 * client's own. The client passes it as a descriptor it only had to be able to read.
 */
export function checkDirAccess(peer: Peer, dir: string | undefined, field: string): void {
  if (dir === undefined) return;
  const st = statSync(dir);
  if (st.uid !== peer.uid) throw denied(`${field}: the directory belongs to uid ${st.uid}, not to the client (uid ${peer.uid}): a client that is not root may use only its own directories`);
}
