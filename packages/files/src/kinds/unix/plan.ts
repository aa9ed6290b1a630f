/**
 * AF_UNIX sockets made again: socketpair ends (stream, datagram, seqpacket) joined to their
 * other end, with what sat in their receive queues (sk-queues.img); sockets bound to a name,
 * listening or unconnected datagram ones.
 */
import { SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import { badImage, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { sockoptCalls, type SockoptCall } from '../../sockopts/plan.js';
import type { FileBase } from '../reg/plan.js';
import { UNIX_TYPES } from './facts.js';

/**
 * unix: one end of a socketpair (type SOCK_STREAM 1 / DGRAM 2 / SEQPACKET 5 in `type`), its
 * other end (index into the plan's files), buffer sizes as getsockopt shows them, shutdown
 * bits (1 read, 2 write) and what sat in its receive queue, one Buffer per message.
 */
export interface UnixPairFilePlan extends FileBase {
  kind: 'unix';
  type: number;
  socket: { peer: number; sndbuf: number; rcvbuf: number; shutdown: number; queue: Buffer[]; sockopts: SockoptCall[] };
}

/**
 * unix-bound: a unix socket bound to a name (`address` a raw sockaddr_un, abstract names
 * start with a NUL byte), listening with `backlog` when `listen`; a stale socket file at the
 * name is replaced.
 */
export interface UnixBoundFilePlan extends FileBase {
  kind: 'unix-bound';
  type: number;
  unixBound: { address: Buffer; listen: boolean; backlog: number; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[] };
}

const SHUTDOWN: Record<string, number> = { NONE: 0, READ: 1, WRITE: 2, BOTH: 3 };

export class UnixPlans implements PlanKind<UnixPairFilePlan | UnixBoundFilePlan> {
  readonly type = 'UNIXSK';
  readonly field = 'usk';
  /** files.img id → the messages queued on that socket */
  private readonly queues = new Map<number, Buffer[]>();
  /** socketpair ends met so far: plan index, own and peer inode (peers are joined at the end) */
  private readonly ends: { index: number; ino: number; peerIno: number; what: string }[] = [];
  /** every socket of the checkpoint by inode (whether its peer is in it) */
  private inodes = new Set<number>();

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    this.inodes = new Set([...files.values()].filter((f) => f.usk).map((f) => Number(f.usk.ino)));
    for (const q of (await readImage(dir, 'sk-queues.img', 'SK_QUEUES', true)) ?? []) {
      const data = (q.extra as Buffer | undefined) ?? Buffer.alloc(0);
      if (q.scm?.length) throw refuse(`sk-queues.img: a queued message carries descriptors (SCM_RIGHTS), which restore does not pass yet`);
      let list = this.queues.get(Number(q.id_for));
      if (!list) this.queues.set(Number(q.id_for), (list = []));
      list.push(data.subarray(0, Number(q.length)));
    }
  }

  plan(u: Obj, ctx: PlanContext): UnixPairFilePlan | UnixBoundFilePlan {
    const named = Buffer.isBuffer(u.name) && u.name.length > 0;
    const state = Number(u.state);
    const type = Number(u.type);
    const bufs = { sndbuf: Number(u.opts?.so_sndbuf ?? 0), rcvbuf: Number(u.opts?.so_rcvbuf ?? 0), sockopts: sockoptCalls(u.opts as Obj | undefined, false) };
    if (!named && !u.peer && UNIX_TYPES.includes(type) && state === TCP_STATE.CLOSE) {
      // made and never bound nor connected (a JVM keeps such sockets): it only has to exist
      if (this.queues.get(ctx.id)?.length) throw refuse(`${ctx.what}: messages queued on an unconnected unix socket are not restored yet`);
      return { kind: 'unix-bound', flags: Number(u.flags), pos: 0n, type, unixBound: { address: Buffer.alloc(0), listen: false, backlog: 0, ...bufs } };
    }
    if (named && !u.peer && UNIX_TYPES.includes(type) && (state === TCP_STATE.LISTEN || (state === TCP_STATE.CLOSE && type === SOCK_TYPE.DGRAM))) {
      if (this.queues.get(ctx.id)?.length) throw refuse(`${ctx.what}: messages queued on an unconnected unix socket are not restored yet`);
      // sockaddr_un: family, then the name (a path gets its terminating NUL)
      const name = u.name as Buffer;
      const address = Buffer.concat([Buffer.from([1, 0]), name, name[0] !== 0 && name[name.length - 1] !== 0 ? Buffer.from([0]) : Buffer.alloc(0)]);
      return { kind: 'unix-bound', flags: Number(u.flags), pos: 0n, type, unixBound: { address, listen: state === TCP_STATE.LISTEN, backlog: Number(u.backlog ?? 0), ...bufs } };
    }
    if (!UNIX_TYPES.includes(type) || state !== TCP_STATE.ESTABLISHED || !u.peer || named) {
      throw refuse(`${ctx.what}: unix socket (type ${u.type}, state ${u.state}${named ? ', bound to a name' : ''}) is not restored yet (socketpairs are)`);
    }
    const shutdown = SHUTDOWN[String(u.shutdown ?? 'NONE')] ?? Number(u.shutdown ?? 0);
    this.ends.push({ index: ctx.index, ino: Number(u.ino), peerIno: Number(u.peer), what: ctx.what });
    return { kind: 'unix', flags: Number(u.flags), pos: 0n, type, socket: { peer: -1, ...bufs, shutdown, queue: this.queues.get(ctx.id) ?? [] } };
  }

  inheritKey(u: Obj): string {
    return `socket:[${u.ino}]`;
  }

  /** Is the other end of this socket in the checkpoint (it would have to be made alone)? */
  peerInCheckpoint(u: Obj): boolean {
    return this.inodes.has(Number(u.peer));
  }

  /** Point every socketpair end at its other end (which must be in the checkpoint). */
  finish(files: readonly unknown[]): void {
    const byIno = new Map(this.ends.map((s) => [s.ino, s.index]));
    for (const s of this.ends) {
      const peer = byIno.get(s.peerIno);
      if (peer === undefined) throw badImage(`${s.what}: the unix socket's peer socket:[${s.peerIno}] is not in the checkpoint`, { image: 'files.img' });
      const end = files[s.index] as UnixPairFilePlan;
      end.socket.peer = peer;
    }
  }
}
