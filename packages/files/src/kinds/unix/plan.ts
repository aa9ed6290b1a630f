/**
 * AF_UNIX sockets made again: socketpair ends joined to their other end; connections to a named
 * listener (the client connects to the listener again and the server end is accepted from it,
 * so it keeps the listener's name); connections still waiting in a listener's queue; datagram
 * sockets connected to a named one; sockets bound to a name (listening or not), their file
 * unlinked again when it was; a socket never bound nor connected. Queued messages
 * (sk-queues.img) are sent again from the other end, a datagram from its recorded sender, with
 * the descriptors they carried (SCM_RIGHTS: files of the checkpoint of their own, made again
 * and sent with their message). A socket whose peer was outside the tree (a record marked
 * EXTERN): with --ext-unix-sk, an unnamed datagram socket connects to the peer's name again;
 * any other comes only from a descriptor handed over (--inherit-fd, planned by the table). An RPC
 * client's connection to the criu that dumped it (marked SERVICE): a socketpair end whose other
 * end sends the DUMP answer `restored: true` and is closed, as CRIU 4.2 makes it.
 */
import { restoredDumpAnswer } from '@crtools/images';
import { AF, TCP_STATE, SOCK_TYPE, USK_FLAGS } from '@crtools/images/facts';
import { badImage, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { sockoptCalls, type SockoptCall, type SocketFilePlan } from '../../sockopts/plan.js';
import type { FileBase } from '../reg/plan.js';
import { INFLIGHT_KINDS, SCM_MAX_FD, SCM_RIGHTS, UNIX_TYPES } from './facts.js';

/**
 * A queued message: its bytes; `from` (index into the plan's files): the socket it is sent from
 * (a datagram's recorded sender), else the default one; `fds` (indexes into the plan's files):
 * the descriptors it carries (SCM_RIGHTS), in order.
 */
export interface UnixMessage { data: Buffer; from?: number; fds?: number[] }

/**
 * unix: one end of a connection whose both ends are in the checkpoint (type SOCK_STREAM 1 /
 * DGRAM 2 / SEQPACKET 5 in `type`), its other end (index into the plan's files), buffer sizes as
 * getsockopt shows them, shutdown bits (1 read, 2 write) and what sat in its receive queue, one
 * Buffer per message. `listener` (on the end accepted by a listener, index into the plan's
 * files): the pair is made by connecting the other end to that listener and accepting; without
 * it, by socketpair(). `peer` is the socket's own index when the other end was closed: made by
 * socketpair(), the other end sends the queue and is closed.
 */
export interface UnixPairFilePlan extends FileBase {
  kind: 'unix';
  type: number;
  socket: {
    peer: number; listener?: number; sndbuf: number; rcvbuf: number; shutdown: number; queue: UnixMessage[]; sockopts: SockoptCall[];
    /**
     * the accepted end of a connection whose listener was closed: the listener's name (a raw
     * sockaddr_un) it is named after (bound to it without a file of its own), and the directory
     * of a relative one
     */
    name?: Buffer; dir?: string;
    /**
     * a datagram pair end bound to `name` in its own right (not after a listener): its socket
     * file unlinked since, or kept with this owner and mode
     */
    own?: { unlinked: boolean; perms?: { mode: number; uid: number; gid: number } };
  };
}

/**
 * unix-bound: a unix socket bound to a name (`address` a raw sockaddr_un, abstract names start
 * with a NUL byte; empty for none), listening with `backlog` when `listen`; a stale socket file
 * at the name is replaced. `unlinked`: the name's file had been removed (bound again, then
 * unlinked); `perms`: owner and mode of its socket file. `connect` (index into the plan's files):
 * connected to that socket (a listener: the connection waits in its queue; a bound datagram
 * socket). `queue`: what waits in its receive queue, sent by the first socket connected to it (or,
 * for a datagram socket nobody connects to, from a socket of the moment).
 */
export interface UnixBoundFilePlan extends FileBase {
  kind: 'unix-bound';
  type: number;
  unixBound: {
    address: Buffer; listen: boolean; backlog: number; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[];
    unlinked?: boolean; perms?: { mode: number; uid: number; gid: number }; connect?: number; queue?: UnixMessage[]; shutdown?: number;
    /** a relative path name: the directory it is bound in (and connected to from) */
    dir?: string;
  };
}

const SHUTDOWN: Record<string, number> = { NONE: 0, READ: 1, WRITE: 2, BOTH: 3 };

/** what plan() needs to know of every socket of the checkpoint */
interface Known { ino: number; type: number; state: number; peer: number; name: Buffer; deleted: boolean; extern: boolean }

/** sockaddr_un of a recorded name: family, then the name (a path gets its terminating NUL) */
export function unixAddress(name: Buffer): Buffer {
  if (!name.length) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([1, 0]), name, name[0] !== 0 && name[name.length - 1] !== 0 ? Buffer.from([0]) : Buffer.alloc(0)]);
}

const nameKey = (type: number, name: Buffer, deleted: boolean) => `${type}:${deleted ? 1 : 0}:${name.toString('hex')}`;

export class UnixPlans implements PlanKind<UnixPairFilePlan | UnixBoundFilePlan | SocketFilePlan> {
  readonly type = 'UNIXSK';
  readonly field = 'usk';
  /** --ext-unix-sk: connect to a peer outside the tree again, by its name */
  extUnixSk = false;
  /** files.img id → the messages queued on that socket: bytes, sender's address, files.img ids of the descriptors carried */
  private readonly queues = new Map<number, { data: Buffer; addr?: Buffer; rights: number[] }[]>();
  /** planned messages whose sender or descriptors are joined at the end */
  private readonly pending: { msg: UnixMessage; addr?: Buffer; rights: number[]; receiver: number; peerIno?: number; what: string; pid: number }[] = [];
  /** connected ends met so far: plan index, own and peer inode, the listener's inode (joined at the end) */
  private readonly ends: { index: number; ino: number; peerIno: number; listenerIno?: number; what: string }[] = [];
  /** sockets connected to a listener or a bound datagram socket: plan index, target inode */
  private readonly conns: { index: number; targetIno: number; what: string }[] = [];
  /** every socket of the checkpoint by inode */
  private known = new Map<number, Known>();
  /** listeners of the checkpoint by type, name and whether their file was unlinked → inodes */
  private listeners = new Map<string, number[]>();
  /** plan index of every socket planned, by inode */
  private readonly planned = new Map<number, number>();

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    for (const f of files.values()) {
      const u = f.usk;
      if (!u) continue;
      const k: Known = {
        ino: Number(u.ino), type: Number(u.type), state: Number(u.state), peer: Number(u.peer ?? 0),
        name: Buffer.isBuffer(u.name) ? u.name : Buffer.alloc(0), deleted: !!u.deleted, extern: (Number(u.uflags ?? 0) & USK_FLAGS.EXTERN) !== 0,
      };
      this.known.set(k.ino, k);
      if (k.state === TCP_STATE.LISTEN && k.name.length && !k.extern) {
        const key = nameKey(k.type, k.name, k.deleted);
        this.listeners.set(key, [...(this.listeners.get(key) ?? []), k.ino]);
      }
    }
    for (const q of (await readImage(dir, 'sk-queues.img', 'SK_QUEUES', true)) ?? []) {
      const data = (q.extra as Buffer | undefined) ?? Buffer.alloc(0);
      const rights: number[] = [];
      for (const scm of q.scm ?? []) {
        if (Number(scm.type) !== SCM_RIGHTS) throw refuse(`sk-queues.img: a message queued for file ${q.id_for} carries control data of type ${scm.type}, which is not restored`);
        rights.push(...(scm.rights ?? []).map(Number));
      }
      if (rights.length > SCM_MAX_FD) throw badImage(`sk-queues.img: a message queued for file ${q.id_for} carries ${rights.length} descriptors`, { image: 'sk-queues.img' });
      const addr = Buffer.isBuffer(q.addr) && q.addr.length > 2 ? q.addr : undefined;
      let list = this.queues.get(Number(q.id_for));
      if (!list) this.queues.set(Number(q.id_for), (list = []));
      list.push({ data: data.subarray(0, Number(q.length)), addr, rights });
    }
  }

  plan(u: Obj, ctx: PlanContext): UnixPairFilePlan | UnixBoundFilePlan | SocketFilePlan {
    const name: Buffer = Buffer.isBuffer(u.name) ? u.name : Buffer.alloc(0);
    const named = name.length > 0;
    const state = Number(u.state);
    const type = Number(u.type);
    const ino = Number(u.ino);
    const peerIno = Number(u.peer ?? 0);
    const deleted = !!u.deleted;
    const recorded = this.queues.get(ctx.id) ?? [];
    const queue: UnixMessage[] = recorded.map((m) => ({ data: m.data }));
    const join = (peerIno?: number) => recorded.forEach((m, i) => {
      if (m.addr || m.rights.length || peerIno) this.pending.push({ msg: queue[i], addr: m.addr, rights: m.rights, receiver: ctx.index, peerIno, what: ctx.what, pid: ctx.pid });
    });
    const shutdown = SHUTDOWN[String(u.shutdown ?? 'NONE')] ?? Number(u.shutdown ?? 0);
    const bufs = { sndbuf: Number(u.opts?.so_sndbuf ?? 0), rcvbuf: Number(u.opts?.so_rcvbuf ?? 0), sockopts: sockoptCalls(u.opts as Obj | undefined, false) };
    const what = `${ctx.what}: unix socket (type ${u.type}, state ${u.state}${named ? ', bound to a name' : ''})`;
    if (!UNIX_TYPES.includes(type)) throw refuse(`${what} is not restored (only stream, datagram and seqpacket ones are)`);
    if (this.known.get(ino)?.extern) throw badImage(`${ctx.what}: socket:[${ino}] is recorded as outside the tree (EXTERN), yet a task holds it`, { image: 'files.img' });
    if (deleted && (!named || name[0] === 0)) throw badImage(`${ctx.what}: a unix socket marked deleted has no path name`, { image: 'files.img' });
    const perms = u.file_perms && named && name[0] !== 0 && !deleted
      ? { mode: Number(u.file_perms.mode), uid: Number(u.file_perms.uid), gid: Number(u.file_perms.gid) } : undefined;
    const relative = named && name[0] !== 0 && name[0] !== 0x2f; // '/'
    const dir = relative && typeof u.name_dir === 'string' && u.name_dir ? u.name_dir : undefined;
    if (dir && !dir.startsWith('/')) throw badImage(`${ctx.what}: a unix socket's name_dir ${JSON.stringify(dir)} is not an absolute path`, { image: 'files.img' });
    this.planned.set(ino, ctx.index);
    if (Number(u.uflags ?? 0) & USK_FLAGS.SERVICE) {
      // a self-dump's connection to criu: the client reads the answer to its DUMP once restored
      if (peerIno) throw badImage(`${ctx.what}: a unix socket marked as the connection to criu (SERVICE) has a peer socket:[${peerIno}]`, { image: 'files.img' });
      if (recorded.length) throw refuse(`${what}: messages queued on the RPC client's connection to criu (SERVICE) are not restored`);
      return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: ctx.index, ...bufs, shutdown, queue: [{ data: restoredDumpAnswer() }] } };
    }
    const bound = (extra: Partial<UnixBoundFilePlan['unixBound']>): UnixBoundFilePlan => {
      if (relative && !dir) throw refuse(`${what}: bound to a relative name without the directory it was bound in (name_dir) is not restored`);
      return {
        kind: 'unix-bound', flags: Number(u.flags), pos: 0n, type,
        unixBound: { address: unixAddress(name), listen: false, backlog: 0, ...bufs, unlinked: deleted, perms, ...(dir ? { dir } : {}), ...extra },
      };
    };

    if (state === TCP_STATE.LISTEN) {
      if (!named) throw refuse(`${what}: a listening socket without a name is not restored`);
      // messages queued for a listener (CRIU's format: for its first connection) go with it
      if (recorded.some((m) => m.addr)) throw badImage(`${ctx.what}: a datagram queued on a listening socket`, { image: 'sk-queues.img' });
      join();
      return bound({ listen: true, backlog: Number(u.backlog ?? 0), queue });
    }
    if (!peerIno && state === TCP_STATE.ESTABLISHED && type !== SOCK_TYPE.DGRAM && shutdown === 3) {
      // a connection whose other end was closed: a socketpair whose other end sends the queue
      // and is closed at once (which shuts this one down both ways, as it was)
      join();
      return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: ctx.index, ...bufs, shutdown: 0, queue } };
    }
    if (!peerIno && type === SOCK_TYPE.DGRAM && !named && queue.length && state === TCP_STATE.ESTABLISHED) {
      // an unnamed datagram socket holding datagrams: the end of a socketpair (or connection)
      // whose other end was closed; made so again, that other end sending the queue and closed
      join();
      return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: ctx.index, ...bufs, shutdown, queue } };
    }
    if (!peerIno) {
      if (state !== TCP_STATE.CLOSE && type !== SOCK_TYPE.DGRAM) throw refuse(`${what}: a connection whose other end was closed and that is not shut down both ways is not restored`);
      if (queue.length && (!named || type !== SOCK_TYPE.DGRAM)) throw refuse(`${what}: messages queued on an unconnected unix socket are not restored yet`);
      // bound (waiting for datagrams, each sent again from its sender when it had a name), or made
      // and never bound nor connected (a JVM keeps such sockets)
      join();
      return bound({ queue });
    }
    const peer = this.known.get(peerIno);
    if (peer?.extern) return this.outsidePeer(u, ctx, peer, bufs, what, recorded.length > 0, shutdown);
    if (!peer || (peer.peer === ino && peerIno !== ino)) {
      // both ends here, each the other's peer: a socketpair, or a connection accepted from a
      // listener (an end whose peer is missing is a bad image, said once every file is planned)
      let listenerIno: number | undefined;
      if (named && type === SOCK_TYPE.DGRAM) {
        // a datagram pair end bound to a name of its own (both ends may be): named again as it
        // was, before the queues are sent (a datagram from the other end comes from its name)
        if (relative && !dir) throw refuse(`${what}: bound to a relative name without the directory it was bound in (name_dir) is not restored`);
        for (const m of recorded) {
          if (!m.addr) continue;
          if (!peer || !m.addr.subarray(2).equals(peer.name)) throw refuse(`${what}: a datagram queued from another socket than its peer (sent before it was connected) is not restored`);
          delete m.addr; // the peer's own name: it comes with the datagram sent from the peer
        }
        join();
        this.ends.push({ index: ctx.index, ino, peerIno, what: ctx.what });
        return {
          kind: 'unix', flags: Number(u.flags), pos: 0n, type,
          socket: { peer: -1, ...bufs, shutdown, queue, name: unixAddress(name), ...(dir ? { dir } : {}), own: { unlinked: deleted, ...(perms ? { perms } : {}) } },
        };
      }
      if (named) {
        if (peer?.name.length) throw refuse(`${what}: a connection whose both ends are bound to names is not restored yet`);
        const found = this.listeners.get(nameKey(type, name, deleted)) ?? [];
        if (found.length > 1) throw refuse(`${what}: the accepted end of a connection whose listener is ambiguous is not restored`);
        listenerIno = found[0];
      }
      if (recorded.some((m) => m.addr)) throw refuse(`${what}: a message queued on a connected unnamed socket from another sender (a datagram sent before it was connected) is not restored`);
      join();
      this.ends.push({ index: ctx.index, ino, peerIno, listenerIno, what: ctx.what });
      // named with no listener in the checkpoint: accepted from one closed since, named after it again
      if (named && listenerIno === undefined) {
        if (relative && !dir) throw refuse(`${what}: named after a relative name without the directory it was bound in (name_dir) is not restored`);
        return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: -1, ...bufs, shutdown, queue, name: unixAddress(name), ...(dir ? { dir } : {}) } };
      }
      return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: -1, ...bufs, shutdown, queue } };
    }
    // connected to a socket that is not connected back: a listener (the connection waits in its
    // queue) or a bound datagram socket
    if (peer && peer.state === TCP_STATE.LISTEN && type === SOCK_TYPE.DGRAM) throw badImage(`${ctx.what}: a datagram socket connected to a listener`, { image: 'files.img' });
    if (queue.length) {
      // a datagram socket connected to another takes datagrams from that one only: sent from it, to this one's name
      if (type !== SOCK_TYPE.DGRAM || !named) throw refuse(`${what}: messages queued on a ${named ? 'connection waiting in a listener\'s queue' : 'connected socket without a name'} are not restored`);
      join(peerIno);
    }
    this.conns.push({ index: ctx.index, targetIno: peerIno, what: ctx.what });
    return bound({ connect: -1, shutdown, queue });
  }

  /**
   * A socket whose peer was outside the tree: with --ext-unix-sk an unnamed datagram socket is
   * made and connected to the peer's name again (made like any socket on its own); anything
   * else needs the caller's descriptor (--inherit-fd, which the table plans before this).
   */
  private outsidePeer(u: Obj, ctx: PlanContext, peer: Known, bufs: { sndbuf: number; rcvbuf: number; sockopts: SockoptCall[] }, what: string, queued: boolean, shutdown: number): SocketFilePlan {
    const type = Number(u.type);
    const hand = `--inherit-fd 'fd[N]:socket:[${u.ino}]'`;
    const peerName = JSON.stringify(peer.name.toString('latin1').replace(/\0/g, '@'));
    if (type !== SOCK_TYPE.DGRAM || !peer.name.length) {
      throw refuse(`${what}: its peer socket:[${peer.ino}] was outside the tree (dumped with --external unix[${u.ino}]): it is restored only from a descriptor handed over, ${hand}`);
    }
    if (!this.extUnixSk) throw refuse(`${what}: connected to socket:[${peer.ino}] bound to ${peerName} outside the tree: restored with --ext-unix-sk (connected to that name again) or from a descriptor handed over, ${hand}`);
    if (Buffer.isBuffer(u.name) && u.name.length) throw refuse(`${what}: a datagram socket bound to a name and connected to one outside the tree is not restored yet (${hand})`);
    if (queued) throw refuse(`${what}: datagrams queued from socket:[${peer.ino}] outside the tree are not restored`);
    if (shutdown) throw refuse(`${what}: a datagram socket shut down and connected to one outside the tree is not restored yet (${hand})`);
    return { kind: 'socket', flags: Number(u.flags), pos: 0n, type, socket: { family: AF.UNIX, protocol: 0, connect: unixAddress(peer.name), ...bufs } };
  }

  inheritKey(u: Obj): string {
    return `socket:[${u.ino}]`;
  }

  /** Is the other end of this socket in the checkpoint (it would have to be made alone)? */
  peerInCheckpoint(u: Obj): boolean {
    const p = this.known.get(Number(u.peer));
    return !!p && !p.extern;
  }

  /** The files.img ids of the descriptors in flight in queued messages, with who names them. */
  inflight(): { id: number; what: string; pid: number }[] {
    return this.pending.flatMap((p) => p.rights.map((id) => ({ id, what: `${p.what}: a descriptor in flight in its queue`, pid: p.pid })));
  }

  /** Point every connected socket at its other end, the listener it was accepted from, the socket it connects to. */
  finish(files: readonly unknown[], indexOf?: (id: number) => number | undefined): void {
    for (const p of this.pending) {
      if (p.rights.length) {
        p.msg.fds = p.rights.map((id) => {
          const i = indexOf?.(id);
          if (i === undefined) throw badImage(`${p.what}: a descriptor in flight in its queue is file ${id}, which files.img lacks`, { image: 'sk-queues.img' });
          const k = (files[i] as { kind: string }).kind;
          if (!INFLIGHT_KINDS.includes(k)) throw refuse(`${p.what}: a descriptor in flight in its queue is a ${k} file, which is not sent again yet`);
          return i;
        });
      }
      if (p.addr || p.peerIno) {
        const from = p.peerIno ?? this.senderOf(p.addr!, files[p.receiver] as UnixBoundFilePlan, p.what);
        const i = this.planned.get(from);
        if (i === undefined) throw refuse(`${p.what}: a datagram queued from socket:[${from}], which is not in the checkpoint`);
        if (p.addr && p.peerIno && !this.known.get(p.peerIno)?.name.equals(p.addr.subarray(2))) {
          throw refuse(`${p.what}: a datagram queued from another socket than the one it is connected to (sent before it connected) is not restored`);
        }
        p.msg.from = i;
      }
    }
    for (const s of this.ends) {
      const peer = this.planned.get(s.peerIno);
      if (peer === undefined) throw badImage(`${s.what}: the unix socket's peer socket:[${s.peerIno}] is not in the checkpoint`, { image: 'files.img' });
      const end = files[peer] as UnixPairFilePlan;
      if (end.kind !== 'unix') throw badImage(`${s.what}: the unix socket's peer socket:[${s.peerIno}] is not connected back to it`, { image: 'files.img' });
      const me = files[s.index] as UnixPairFilePlan;
      me.socket.peer = peer;
      if (s.listenerIno !== undefined) me.socket.listener = this.listenerIndex(files, s.listenerIno, s.what);
    }
    for (const s of this.conns) {
      const me = files[s.index] as UnixBoundFilePlan;
      me.unixBound.connect = this.listenerIndex(files, s.targetIno, s.what, s.index);
      const target = files[me.unixBound.connect] as UnixBoundFilePlan;
      if (target.type !== me.type) throw badImage(`${s.what}: connected to a unix socket of another type`, { image: 'files.img' });
    }
  }

  /** the socket of the checkpoint a datagram was sent from, by its recorded address */
  private senderOf(addr: Buffer, receiver: UnixBoundFilePlan, what: string): number {
    if (receiver.kind !== 'unix-bound' || !receiver.unixBound.address.length || receiver.type !== SOCK_TYPE.DGRAM) {
      throw refuse(`${what}: a datagram with a sender's address queued on a socket that others cannot send to by name`);
    }
    const name = addr.subarray(2);
    const found = [...this.known.values()].filter((k) => k.type === SOCK_TYPE.DGRAM && k.name.equals(name));
    if (found.length !== 1) throw refuse(`${what}: a datagram queued from ${JSON.stringify(name.toString('latin1').replace(/\0/g, '@'))}, ${found.length ? 'a name several sockets of the checkpoint have' : 'a socket not in the checkpoint'}`);
    return found[0].ino;
  }

  /** the plan index of a socket others connect to: bound to a name, not itself connected (but to itself: `self`) */
  private listenerIndex(files: readonly unknown[], ino: number, what: string, self?: number): number {
    const i = this.planned.get(ino);
    if (i === undefined) throw badImage(`${what}: the unix socket socket:[${ino}] it connects to is not in the checkpoint`, { image: 'files.img' });
    const t = files[i] as UnixBoundFilePlan;
    if (t.kind !== 'unix-bound' || !t.unixBound.address.length || (t.unixBound.connect !== undefined && i !== self)) {
      throw refuse(`${what}: connected to socket:[${ino}], which is not a unix socket bound to a name and unconnected`);
    }
    return i;
  }
}
