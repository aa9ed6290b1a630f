/**
 * AF_UNIX sockets, as sock_diag describes them: both ends of a socketpair (stream, datagram,
 * seqpacket) with what waits in their queues (sk-queues.img), a named socket listening with
 * nobody waiting, a named unconnected datagram socket, a socket never bound nor connected.
 * Anything else is refused, named precisely.
 */
import { socketInfo, socketQueue, unixSockets, type UnixSocketDiag } from '@crtools/sys';
import { SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { fown, inodeOf, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { readSocketOptions } from '../../sockopts/dump.js';
import { UNIX_TYPES } from './facts.js';

export class UnixSockets implements DumpKind {
  /** sk-queues.img entries: what sat in each socket's receive queue (one per message) */
  private readonly queues: Entry[] = [];
  /** AF_UNIX sockets of this network namespace (sock_diag), read when the first socket is met */
  private table: Map<number, UnixSocketDiag> | undefined;
  /** dumped sockets: inode → peer inode (each peer must be dumped too) */
  private readonly peers = new Map<number, { peer: number; what: string }>();

  private get byIno(): Map<number, UnixSocketDiag> {
    return (this.table ??= new Map(unixSockets().map((u) => [u.ino, u])));
  }

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const t = rec.target;
    if (!/^socket:\[\d+\]$/.test(t)) return undefined;
    const u = this.byIno.get(inodeOf(t));
    if (!u) return undefined;
    const named = u.name !== null ? ` bound to ${JSON.stringify(u.name.toString('latin1').replace(/\0/g, '@'))}` : '';
    const why =
      !UNIX_TYPES.includes(u.type) ? `unix socket of type ${u.type}`
      : u.state === TCP_STATE.LISTEN ? (!named ? 'unnamed listening unix socket' : (u.rqueue ?? 0) > 0 ? `listening unix socket${named} with connections not yet accepted` : undefined)
      : u.state === TCP_STATE.CLOSE && u.type === SOCK_TYPE.DGRAM && named && !u.peer ? undefined
      : named ? `connected unix socket${named}`
      : u.state === TCP_STATE.CLOSE && !u.peer && !u.shutdown ? undefined // made, never bound nor connected
      : u.state !== TCP_STATE.ESTABLISHED || !u.peer ? 'unconnected unix socket'
      : this.byIno.get(u.peer)?.name ? 'unix socket connected to a named one'
      : undefined;
    if (why) throw refuseFd(pid, rec.fd, `${t} (${why}) is not supported yet`);
    return { type: 'UNIXSK', key: t, entry: (id) => this.entry(id, flags, pid, rec, u) };
  }

  private entry(id: number, flags: number, pid: number, rec: FdRecord, u: UnixSocketDiag): Entry {
    // a listening socket has no data queue (its queue holds connections: none, checked above),
    // nor has one never bound nor connected (nobody can send to it)
    const noQueue = u.state === TCP_STATE.LISTEN || (u.state === TCP_STATE.CLOSE && !u.peer && u.name === null);
    const q = noQueue ? { ...socketInfo(pid, rec.fd), packets: [] as Buffer[], rights: false } : socketQueue(pid, rec.fd);
    if (q.rights) throw refuseFd(pid, rec.fd, `descriptors in flight in a unix socket's queue are not supported`);
    if (!u.peer && q.packets.length) throw refuseFd(pid, rec.fd, `messages queued on an unconnected unix socket are not supported yet`);
    for (const data of q.packets) this.queues.push({ id_for: id, length: data.length, extra: data });
    if (u.peer) this.peers.set(u.ino, { peer: u.peer, what: `task ${pid} fd ${rec.fd}` });
    const usk: Entry = {
      id, ino: u.ino, type: u.type, state: u.state, flags, uflags: 0, backlog: u.state === TCP_STATE.LISTEN ? (u.wqueue ?? 0) : 0, peer: u.peer, fown: fown(),
      opts: readSocketOptions(pid, rec.fd).opts,
      name: u.name ?? Buffer.alloc(0),
    };
    if (u.shutdown) usk['shutdown'] = ['NONE', 'READ', 'WRITE', 'BOTH'][u.shutdown & 3];
    return { type: 'UNIXSK', id, usk };
  }

  /** Every dumped socket's peer must be in the dump too (a pair half outside is not restorable). */
  finish(refusals: Refusals): void {
    for (const [ino, { peer, what }] of this.peers) {
      if (!this.peers.has(peer)) {
        refusals.refuse(new CrtoolsError('UNSUPPORTED_FILE', `${what}: socket:[${ino}] is connected to socket:[${peer}] outside the dumped tree, which is not supported`, {
          context: {}, exitCode: ExitCode.UNSUPPORTED,
        }));
      }
    }
  }

  images(): DumpImage[] {
    return [{ file: 'sk-queues.img', magic: 'SK_QUEUES', entries: this.queues }];
  }
}
