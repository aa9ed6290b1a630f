/**
 * The dump's hold on the tree's TCP connections: each is locked (the network lock) and put in
 * repair mode through a descriptor of ours on the task's socket, and stays so until the dump
 * ends. Then either the tree is gone (`release`: our descriptors close, the sockets go away in
 * repair mode without a packet, and the lock stays for the restore to lift) or it goes on
 * (`resume`: each leaves repair mode, gets its SO_REUSEADDR back, and is unlocked). A connection
 * of a network namespace below the tree root's is locked in that namespace (its own rules, by
 * the dump's method and run id), as the root's are in theirs.
 */
import { closeSync } from 'node:fs';
import type { Logger } from '@crtools/common';
import { setSocketOption, takeTaskFd, tcpIdle, tcpRepair, tcpSave, tcpState, type TcpConnState, type TcpIdle } from '@crtools/sys';
import { refuseFd } from '../../dump/kind.js';
import type { LockedConnection, NetworkLock } from './netlock.js';

interface Held {
  fd: number;
  conn: LockedConnection;
  reuseaddr: boolean;
  lock: NetworkLock;
}

function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

/** fn on a copy of task pid's descriptor fd (closed after). */
function onTaskFd<T>(pid: number, fd: number, fn: (ours: number) => T): T {
  const ours = takeTaskFd(pid, fd);
  try {
    return fn(ours);
  } finally {
    closeSync(ours);
  }
}

/** tcpi_state of task pid's TCP socket at fd (through a copy of the descriptor). */
export function tcpStateOf(pid: number, fd: number): number {
  return onTaskFd(pid, fd, (ours) => tcpState(ours, { pid }));
}

/** tcpIdle of task pid's TCP socket at fd (state, bytes to read, poll events, SO_PEERNAME), through a copy of the descriptor. */
export function tcpIdleOf(pid: number, fd: number): TcpIdle {
  return onTaskFd(pid, fd, (ours) => tcpIdle(ours, { pid }));
}

export class TcpRepairs {
  private readonly held: Held[] = [];
  /** the locks of the network namespaces below the root's, by their /proc/PID/ns/net path */
  private readonly nested = new Map<string, NetworkLock>();

  constructor(readonly lock: NetworkLock, private readonly log?: Logger) {}

  /** The lock of the namespace `netns` names (undefined: the root's). */
  private lockOf(netns: string | undefined): NetworkLock {
    if (netns === undefined) return this.lock;
    let l = this.nested.get(netns);
    if (!l) this.nested.set(netns, (l = this.lock.inNamespace(netns)));
    return l;
  }

  get count(): number {
    return this.held.length;
  }

  /**
   * Lock task pid's connection at fd, put it in repair mode and read it; it stays so until
   * resume/release. netns: the namespace below the root's it lives in (/proc/PID/ns/net of a
   * task there), locked there.
   */
  take(pid: number, fd: number, conn: LockedConnection, reuseaddr: boolean, netns?: string): TcpConnState {
    const ours = takeTaskFd(pid, fd);
    const lock = this.lockOf(netns);
    let locked = false;
    let repaired = false;
    try {
      lock.lock(conn);
      locked = true;
      try {
        tcpRepair(ours, true, { pid });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EPERM') throw refuseFd(pid, fd, `TCP repair mode is not permitted here (CAP_NET_ADMIN needed) for ${lock.describe(conn)}`);
        throw e;
      }
      repaired = true;
      const st = tcpSave(ours, { pid });
      this.held.push({ fd: ours, conn, reuseaddr, lock });
      this.log?.info(`tcp: ${lock.describe(conn)}${netns ? ` (network namespace of ${netns})` : ''} in repair mode (${st.inqLen} bytes to read, ${st.outqLen} to send, ${st.unsqLen} of them not sent)`);
      return st;
    } catch (e) {
      if (repaired) lock.quietly(() => this.repairOff({ fd: ours, conn, reuseaddr, lock }));
      if (locked) lock.quietly(() => lock.unlock(conn));
      closeSync(ours);
      throw e;
    }
  }

  /** The tree goes on: every connection leaves repair mode and is unlocked (errors are logged). */
  resume(): void {
    // as CRIU: unlocked first, so that the window probe leaving repair mode sends reaches the peer
    for (const l of [this.lock, ...this.nested.values()]) l.quietly(() => l.release());
    this.nested.clear();
    for (const h of this.held.splice(0)) {
      h.lock.quietly(() => h.lock.unlock(h.conn));
      h.lock.quietly(() => this.repairOff(h));
      closeSync(h.fd);
    }
  }

  /**
   * The tree is gone: our descriptors close (the sockets with them, silently); the lock stays
   * (that of a namespace below the root's goes with it, unless something else holds it).
   */
  release(): void {
    this.nested.clear();
    for (const h of this.held.splice(0)) closeSync(h.fd);
  }

  private repairOff(h: Held): void {
    tcpRepair(h.fd, false);
    // leaving repair mode clears the socket's address reuse: put back the task's
    setSocketOption(h.fd, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, i32(h.reuseaddr ? 1 : 0));
  }
}
