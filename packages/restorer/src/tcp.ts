/**
 * Established, half-closed and connecting (SYN_SENT) TCP connections of a checkpoint, made again
 * by the restoring process: each socket is built in repair mode here (bound, "connected" without a
 * packet, queues, window, options, the FINs of a half-closed one; a connecting one's connect made
 * again, its SYN dropped by the lock until it is lifted, then retransmitted on its timer)
 * and handed to its task as an inherited descriptor (the blob dup2s it into place). Once every
 * task is restored and before any runs, the network lock the dump left is lifted and then each
 * leaves repair mode (CRIU's order: the window probe leaving repair mode sends reaches the peer). A restore that fails closes them here, silently (repair mode),
 * and leaves the lock for another try. A connection that ended before the dump (CLOSE with its
 * peer, as CRIU 4.2 writes it) is a new socket in its place; the lock CRIU's dump put on it is lifted too.
 */
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode, type CriuOptions, type Logger } from '@crtools/common';
import { readImageFile } from '@crtools/images';
import { NETWORK_LOCK_MARK, TCP_STATE, namesOf } from '@crtools/images/facts';
import { NetworkLock, networkLockFromImage, type FilePlan, type LockedConnection, type TcpFilePlan } from '@crtools/files/plan';
import { inSocketNamespace, setFileFlags, setSocketOption, tcpRepair, tcpRestore } from '@crtools/sys';
import type { RestorePlan } from './plan.js';

const O_NONBLOCK = 0o4000;
const STATE_NAMES = namesOf(TCP_STATE);
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;

function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0);
  return b;
}

interface Made {
  fd: number;
  reuseaddr: boolean;
  conn: LockedConnection;
}

/** inventory.img's entry (the dump's lock method and run id, --tcp-close). */
async function readInventory(dir: string): Promise<Record<string, unknown>> {
  return ((await readImageFile(join(dir, 'inventory.img'))) as { entries: Record<string, unknown>[] }).entries[0] ?? {};
}

/** The network lock as the dump made it: its method and run id (the nftables table's name) from the inventory. */
function inventoryLock(inv: Record<string, unknown>, log: Logger): NetworkLock {
  const method = networkLockFromImage(inv['network_lock_method'] === undefined ? undefined : Number(inv['network_lock_method']));
  return new NetworkLock(method, String(inv['dump_criu_run_id'] ?? ''), log);
}

/**
 * The lock the dump left on the network namespace the tree joins again (--join-ns net into the
 * namespace it was dumped in: CRIU 4.2's whole-namespace lock, by the inventory's method and run
 * id), or undefined when it holds none (a dump with -R or --network-lock skip, a lock lifted
 * since). The caller lifts it once the tasks are restored, before any runs (as CRIU 4.2).
 */
export async function dumpLockOf(dir: string, netnsPath: string, log: Logger): Promise<NetworkLock | undefined> {
  const lock = inventoryLock(await readInventory(dir), log);
  lock.netns = netnsPath;
  if (!lock.namespaceLocked()) return undefined;
  lock.adoptNamespaceLock();
  return lock;
}

/** The id of the network namespace below the tree root's file f is made in, or undefined. */
function nestedNet(plan: RestorePlan, f: FilePlan): number | undefined {
  return f.netns !== undefined && plan.namespaces?.nestedNets?.has(f.netns) ? f.netns : undefined;
}

export class TcpConnections {
  private readonly made: Made[] = [];
  /** the connections the dump locked (they had a stream), to unlock once the tasks run */
  private readonly locked: { lock: NetworkLock; conn: LockedConnection }[] = [];
  private lock?: NetworkLock;
  /** the locks of the network namespaces below the root's, made anew, by path */
  private readonly nested = new Map<string, NetworkLock>();

  constructor(private readonly log: Logger) {}

  /**
   * Make every connection of the plan (or, with --tcp-close or no stream kept, an unconnected
   * socket in its place) and return the plan with each as an inherited descriptor. ownNetns:
   * the tree has a network namespace of its own, made anew (the sockets are made in there: the
   * caller's setSocketNamespace): netnsPath names it (/proc/PID/fd/N) for the network lock.
   * dumpLock: the dump's lock of the whole namespace, joined again (dumpLockOf).
   */
  async prepare(plan: RestorePlan, dir: string, o: CriuOptions, netnsPath?: string, dumpLock?: NetworkLock): Promise<RestorePlan> {
    const ownNetns = netnsPath !== undefined;
    const tcp = plan.files.map((f, i) => [f, i] as const).filter((x): x is [TcpFilePlan, number] => x[0].kind === 'tcp');
    if (!tcp.length) return plan;
    // connections that ended while their task held them (CLOSE, as CRIU 4.2 writes them) need no
    // option: made again from their stream and brought to CLOSE (without one, a new socket)
    const live = tcp.filter(([f]) => f.tcp.state !== TCP_STATE.CLOSE);
    if (live.length && !o.tcp_established && !o.tcp_close) {
      const f = live[0]![0];
      throw new CrtoolsError('RESTORE_TCP', `the checkpoint holds ${live.length} established TCP connection(s) (socket:[${f.tcp.ino}] first); restore with --tcp-established (or --tcp-close to have them closed)`, {
        exitCode: ExitCode.FAILED,
      });
    }
    const inv = await readInventory(dir);
    // as CRIU: a dump made with --tcp-close is restored with it
    if (live.length && inv['tcp_close'] === true && !o.tcp_close) {
      throw new CrtoolsError('RESTORE_TCP', 'the checkpoint was dumped with --tcp-close (its connections were not kept): restore it with --tcp-close', { exitCode: ExitCode.FAILED });
    }
    // (the namespace joined again still holds the dump's lock, whole: the connections need none of their own)
    this.lock = dumpLock ?? inventoryLock(inv, this.log);
    // A namespace of the tree's own is made anew without the dump's lock (it went with the
    // dumped namespace), yet it must hold as on the host until the tasks run: the segments a
    // connection made here sends (its ACK of the peer's FIN put back, a retransmission of its
    // send queue on the timer repair mode armed) would reach the other end's port while that
    // one is not made yet, or half made, and the answer (a reset) would end it (zdtm
    // socket-tcp-closing, ns flavour: "send: EPIPE"). Each connection is locked in there as
    // the dump locked it, by the dump's method, and unlocked with the others below.
    if (ownNetns) this.lock.netns = netnsPath;
    const files: FilePlan[] = [...plan.files];
    try {
      for (const [f, i] of tcp) {
        // (one of a namespace below the root's is made once that namespace is: prepareNested)
        if (nestedNet(plan, f) !== undefined) continue;
        this.make(f, i, files, o, this.lock, ownNetns);
      }
    } catch (e) {
      this.abandon();
      throw e;
    }
    return { ...plan, files };
  }

  /**
   * The connections of the network namespaces below the root's, once those are made (`netPath`:
   * /proc/PID/fd/N of each, by id): each made in its namespace and locked in there, as those of
   * a namespace of the tree's own are (the dump's lock went with the dumped namespace).
   */
  prepareNested(plan: RestorePlan, o: CriuOptions, netPath: (id: number) => string | undefined): RestorePlan {
    const tcp = plan.files.map((f, i) => [f, i] as const).filter((x): x is [TcpFilePlan, number] => x[0].kind === 'tcp' && nestedNet(plan, x[0]) !== undefined);
    if (!tcp.length) return plan;
    const files: FilePlan[] = [...plan.files];
    try {
      for (const [f, i] of tcp) {
        const path = netPath(f.netns!);
        if (path === undefined) throw new CrtoolsError('RESTORE_TCP', `socket:[${f.tcp.ino}]: network namespace ${f.netns} of the tree was not made`, { exitCode: ExitCode.FAILED });
        let lock = this.nested.get(path);
        if (!lock) this.nested.set(path, (lock = this.lock!.inNamespace(path)));
        const l = lock;
        const made = inSocketNamespace(path, () => this.make(f, i, files, o, l, true));
        // (a socket that comes back closed is made by the task, in that namespace)
        if (!made) files[i] = { ...files[i]!, netns: f.netns! };
      }
    } catch (e) {
      this.abandon();
      throw e;
    }
    return { ...plan, files };
  }

  /**
   * Connection `f` (files[i]) made in repair mode here (in the namespace sockets are made in now),
   * files[i] its inherited descriptor; or a closed socket in its place (false). lock: the lock of
   * its namespace; ownNetns: a namespace made anew, where the connection is locked here.
   */
  private make(f: TcpFilePlan, i: number, files: FilePlan[], o: CriuOptions, lock: NetworkLock, ownNetns: boolean): boolean {
    const t = f.tcp;
    // (in a network namespace of its own the dump's lock went with the namespace: ours is lifted)
    if (t.stream && !ownNetns) this.locked.push({ lock, conn: t.conn });
    if (t.state === TCP_STATE.CLOSE && (!t.stream || o.tcp_close)) {
      files[i] = { ...f.closed, ...(f.fown ? { fown: f.fown } : {}) };
      this.log.info(`tcp: socket:[${t.ino}] ${lock.describe(t.conn)} ended before the dump: a new socket in its place`);
      return false;
    }
    if (o.tcp_close || !t.stream) {
      files[i] = { ...f.closed, ...(f.fown ? { fown: f.fown } : {}) };
      this.log.info(`tcp: socket:[${t.ino}] comes back closed${t.stream ? ' (--tcp-close)' : ' (dumped with --tcp-close)'}`);
      return false;
    }
    const s = t.stream;
    if (ownNetns) {
      lock.lock(t.conn);
      this.locked.push({ lock, conn: t.conn });
    }
    const fd = tcpRestore({
      ...s, state: t.state, shutdown: t.shutdown, mark: NETWORK_LOCK_MARK,
      family: t.family, src: t.src, dst: t.dst, v6only: t.v6only, reuseport: t.reuseport, sndbuf: t.sndbuf, rcvbuf: t.rcvbuf,
    });
    this.made.push({ fd, reuseaddr: t.reuseaddr, conn: t.conn });
    for (const c of t.sockopts) setSocketOption(fd, c.level, c.name, c.value);
    if (f.flags & O_NONBLOCK) setFileFlags(fd, O_NONBLOCK);
    files[i] = { kind: 'inherit', flags: f.flags, pos: 0n, inheritFd: fd, ...(f.fown ? { fown: f.fown } : {}) };
    this.log.info(`tcp: socket:[${t.ino}] ${lock.describe(t.conn)} made in repair mode${lock === this.lock ? '' : ` in network namespace ${f.netns}`}, ${STATE_NAMES[t.state] ?? t.state} (${s.inqLen} bytes to read, ${s.outqLen} to send)`);
    return true;
  }

  /** Every task restored, none running: the connections leave repair mode (our copies close). */
  leaveRepair(): void {
    for (const m of this.made.splice(0)) {
      try {
        tcpRepair(m.fd, false);
        // leaving repair mode clears address reuse: the task's setting back
        setSocketOption(m.fd, SOL_SOCKET, SO_REUSEADDR, i32(m.reuseaddr ? 1 : 0));
      } finally {
        closeSync(m.fd);
      }
    }
  }

  /** Every task restored, none running: the dump's network lock is lifted (a failure is a warning: the restore goes on). */
  unlock(): void {
    const lock = this.lock;
    if (!lock || !this.locked.length) return;
    for (const { lock: l, conn } of this.locked.splice(0)) l.quietly(() => l.unlock(conn));
    for (const l of [lock, ...this.nested.values()]) l.quietly(() => l.release());
    this.nested.clear();
    this.log.info(`tcp: network lock (${lock.method}) lifted`);
  }

  /**
   * The restore failed: our sockets close (in repair mode: no packet); the dump's lock stays
   * for another try, ours in the tree's namespace goes (that may be the caller's, joined).
   */
  abandon(): void {
    for (const m of this.made.splice(0)) closeSync(m.fd);
    // (those of the namespaces below the root's go with them)
    if (this.lock?.netns !== undefined) this.unlock();
  }
}
