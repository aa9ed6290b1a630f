/**
 * AF_UNIX sockets, as sock_diag describes them: both ends of a socketpair (stream, datagram,
 * seqpacket) or of a connection accepted from a named listener (the accepted end reports the
 * listener's name), with what waits in their queues (sk-queues.img); a named listener, with the
 * connections waiting in its queue when their clients are dumped too and sent nothing yet; a
 * datagram socket connected to a named one, or to itself; a named unconnected datagram socket with the
 * datagrams waiting in it; a socket never bound nor connected (a datagram one with what waits in
 * its queue: its socketpair peer was closed); the accepted end of a connection whose listener
 * was closed; a relative path name with the directory it was bound in; a connection whose other end was
 * closed (what it had not read yet stays queued: a JVM holds one, from a socketpair it closed
 * half of). A path name whose file was unlinked is marked `deleted`. A queued datagram keeps
 * its sender's address (when it had a name); the descriptors a queued message carries
 * (SCM_RIGHTS) are files of the dump of their own, named by their ids. A socket whose peer is
 * outside the dumped tree, as CRIU 4.2 allows it: an unnamed datagram socket connected to a
 * named one with --ext-unix-sk, any connected one named with --external unix[INO] (its own
 * inode); the peer gets a record of its own marked EXTERN. An RPC client that dumps itself:
 * its connection to criu (the peer is criu's end, serviceSkIno) is recorded as CRIU 4.2 records
 * it, closed, without a peer, marked SERVICE. Anything else is refused, named precisely.
 */
import { closeSync } from 'node:fs';
import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { inSocketNamespace, socketInfo, socketQueue, unixSocketFile, unixSockets, type UnixSocketDiag } from '@crtools/sys';
import { decodeKdev, encodeDev, SOCK_TYPE, TCP_STATE, USK_FLAGS } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { fown, inodeOf, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim, type NestedNets } from '../../dump/kind.js';
import { ownerInside, type DumpedIds } from '../../dump/fown.js';
import { readSocketOptions } from '../../sockopts/dump.js';
import { SCM_RIGHTS, UNIX_TYPES } from './facts.js';

/** a socket's role, as claim() found it */
type Role =
  | { kind: 'pair'; bound?: boolean } // both ends dumped, each the other's peer, neither named (but an accepted end whose listener was closed, or a datagram end bound to a name of its own: bound)
  | { kind: 'accepted'; listener: number } // the accepted end (named after its listener) of a connection
  | { kind: 'listener'; icons: number[] }
  | { kind: 'waiting'; listener: number } // a connection waiting in a listener's queue
  | { kind: 'sender'; target: number } // a datagram socket connected to a named one
  | { kind: 'alone' } // bound and unconnected, or never bound nor connected
  | { kind: 'closed' } // a connection whose other end was closed (the kernel shut it down both ways)
  | { kind: 'service' }; // an RPC client's own connection to the criu dumping it (a self-dump)

/** the kernel's dev_t (major << 20 | minor) as stat() shows it */
function userDev(kdev: number): bigint {
  const d = decodeKdev(kdev);
  return encodeDev(d.major, d.minor);
}

const show = (name: Buffer) => JSON.stringify(name.toString('latin1').replace(/\0/g, '@'));

export class UnixSockets implements DumpKind {
  /** sk-queues.img entries: what sat in each socket's receive queue (one per message) */
  private readonly queues: Entry[] = [];
  /** AF_UNIX sockets of this network namespace (sock_diag), read when the first socket is met */
  private table: Map<number, UnixSocketDiag> | undefined;
  /** descriptors in flight peeked from queues, open in this process until the dump's files are done */
  private readonly held: number[] = [];
  /** names of datagrams' senders: the receiving socket, the sender's type and name */
  private readonly senders: { ino: number; what: string; type: number; name: Buffer }[] = [];
  /** sockets refused (by role or queue): in the tree, though not dumped */
  private readonly refused = new Set<number>();
  /** dumped sockets: inode → the sockets it needs dumped too (peer, listener, queued clients) */
  private readonly needs = new Map<number, { ino: number; what: string; why: string; peer?: boolean }[]>();
  /** files.img id of every dumped socket, by inode */
  private readonly ids = new Map<number, number>();

  /**
   * inflight: a descriptor of this process (one peeked in flight) → its files.img id, the file
   * dumped like any other (undefined: refused, the refusal given)
   */
  constructor(
    private readonly inflight: (fd: number, what: string) => number | undefined = () => undefined,
    /** a files.img entry made outside descriptors (an outside peer's record), placed before the first of `before`: its new id */
    private readonly add?: (make: (id: number) => Entry, before: readonly number[]) => number,
    /**
     * --ext-unix-sk; --external unix[INO]: the inodes of the tree's sockets whose peer may be
     * outside; serviceSkIno: an RPC self-dump's connection, criu's end of it; nestedMnt: does
     * task pid live in a mount namespace below the root's? nestedNets: the tree's network
     * namespaces below its root's, whose sockets are looked up there too; ids: the tree's ids
     * (its user namespace's maps give the socket files' owners as written)
     */
    private readonly ext: { extUnixSk?: boolean; external?: ReadonlySet<number>; serviceSkIno?: number; nestedMnt?: (pid: number) => boolean; nestedNets?: NestedNets; ids?: () => DumpedIds | undefined } = {},
  ) {}

  /** the sockets made in a network namespace below the root's: inode → that namespace's id (the entry's ns_id) */
  private readonly netOf = new Map<number, number>();

  /** sock_diag's view of the root's namespace, and of each of the tree's below it */
  private get byIno(): Map<number, UnixSocketDiag> {
    if (this.table) return this.table;
    this.table = new Map(unixSockets().map((u) => [u.ino, u]));
    for (const n of this.ext.nestedNets?.all() ?? []) {
      for (const u of inSocketNamespace(n.path, () => unixSockets())) {
        if (this.table.has(u.ino)) continue;
        this.table.set(u.ino, u);
        this.netOf.set(u.ino, n.id);
      }
    }
    return this.table;
  }

  /** the listener whose queue holds this connection's client, if any */
  private listenerOf(ino: number): UnixSocketDiag | undefined {
    for (const s of this.byIno.values()) if (s.state === TCP_STATE.LISTEN && s.icons?.includes(ino)) return s;
    return undefined;
  }

  /** the listeners an accepted end may have been accepted from: same type and name (and bound inode) */
  private acceptedFrom(u: UnixSocketDiag): UnixSocketDiag[] {
    return [...this.byIno.values()].filter((s) => s.state === TCP_STATE.LISTEN && s.type === u.type && s.name?.equals(u.name!) &&
      (u.name![0] === 0 || (s.vfsIno === u.vfsIno && s.vfsDev === u.vfsDev)));
  }

  private role(u: UnixSocketDiag): Role | string {
    const named = u.name !== null && u.name.length > 0 ? ` bound to ${show(u.name)}` : '';
    if (!UNIX_TYPES.includes(u.type)) return `unix socket of type ${u.type}`;
    if (u.state === TCP_STATE.LISTEN) {
      if (!named) return 'unnamed listening unix socket';
      if (u.icons?.includes(0)) return `listening unix socket${named} with a connection waiting whose client was closed`;
      return { kind: 'listener', icons: u.icons ?? [] };
    }
    // the client's own connection to the criu dumping it: whatever its type, as CRIU's
    if (u.peer && u.peer === this.ext.serviceSkIno) return { kind: 'service' };
    const peer = u.peer ? this.byIno.get(u.peer) : undefined;
    if (u.peer && peer?.peer === u.ino && u.peer !== u.ino) {
      if (!named) return { kind: 'pair' }; // a socketpair end, or the client of an accepted connection
      // a datagram pair end bound to a name of its own (zdtm scm06, sk-unix01): one of a pair still
      if (u.type === SOCK_TYPE.DGRAM) return { kind: 'pair', bound: true };
      if (peer.name?.length) return `connected unix socket${named} whose peer is bound to a name too`;
      const l = this.acceptedFrom(u);
      if (l.length > 1) return `accepted unix socket${named} whose listener is not unique`;
      // its listener closed since: made as a pair again, this end named after the listener
      if (!l.length) return { kind: 'pair' };
      return { kind: 'accepted', listener: l[0]!.ino };
    }
    // a datagram socket bound and connected to its own name: it sends to itself only
    if (u.peer && u.peer === u.ino && u.type === SOCK_TYPE.DGRAM && named) return { kind: 'sender', target: u.ino };
    if (u.peer) {
      if (!peer) return `unix socket${named} connected to socket:[${u.peer}], which is not in this network namespace's table`;
      if (u.type !== SOCK_TYPE.DGRAM) return `unix socket${named} connected to socket:[${u.peer}], which is not connected back`;
      if (!peer.name?.length) return `unix datagram socket${named} connected to an unnamed one`;
      if (peer.peer) return `unix datagram socket${named} connected to socket:[${peer.ino}], which is itself connected`;
      return { kind: 'sender', target: peer.ino };
    }
    // no peer: waiting in a listener's queue, bound, never bound nor connected
    if (u.state === TCP_STATE.ESTABLISHED && u.type !== SOCK_TYPE.DGRAM) {
      const l = this.listenerOf(u.ino);
      if (!l) {
        // the other end was closed: the kernel shuts this one down both ways (CRIU's
        // "semi-closed connection"); what it had not read yet is still readable
        if ((u.shutdown ?? 0) === 3) return { kind: 'closed' };
        return `unix socket${named} whose peer was closed`;
      }
      if ((u.wqueue ?? 0) > 0) return `unix socket${named} waiting in the queue of listener socket:[${l.ino}] with data sent (it cannot be read without accepting the connection)`;
      return { kind: 'waiting', listener: l.ino };
    }
    // a datagram socket others connected to is ESTABLISHED (since Linux 6.x) without a peer of its own
    if ((u.state === TCP_STATE.CLOSE || u.type === SOCK_TYPE.DGRAM) && !u.shutdown) return { kind: 'alone' };
    return 'unconnected unix socket';
  }

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const t = rec.target;
    if (!/^socket:\[\d+\]$/.test(t)) return undefined;
    const u = this.byIno.get(inodeOf(t));
    if (!u) return undefined;
    const role = this.role(u);
    if (typeof role === 'string') {
      this.refused.add(u.ino);
      throw refuseFd(pid, rec.fd, `${t} (${role}) is not supported yet`);
    }
    return {
      type: 'UNIXSK', key: t, entry: (id) => {
        try {
          return this.entry(id, flags, pid, rec, u, role);
        } catch (e) {
          this.refused.add(u.ino);
          throw e;
        }
      },
    };
  }

  /**
   * Is a path name's file gone (unlinked, or another file at the path now)? Its owner and mode
   * when not. A relative name (bound relative to the binder's working directory): the directory
   * it is found in, the task's working directory or root (as CRIU 4.2 looks for it), as `dir`;
   * one found in neither is refused (where to bind it again is not known). `named` (a socket
   * named after its listener, closed since: it has no file of its own and is named again without
   * one): any file at the name will do, and a relative name's directory is the working one.
   */
  private nameFile(pid: number, fd: number, u: UnixSocketDiag, named = false): { deleted: boolean; perms?: Entry; dir?: string } {
    const name = u.name!.toString('latin1').replace(/\0+$/, ''); // a path name keeps its terminating NUL
    // the restore binds names from the root's mount namespace: one of a namespace below it would
    // be bound in the wrong one (zdtm sk-unix-mntns)
    if (this.ext.nestedMnt?.(pid)) throw refuseFd(pid, fd, `unix socket bound to ${JSON.stringify(name)} by a task in a nested mount namespace of the tree: binding it again there is not supported by crtools yet (crtools issue 17)`);
    const look = (where: string): { deleted: boolean; perms?: Entry } => {
      try {
        const st = lstatSync(where, { bigint: true });
        if (!named && u.vfsIno !== undefined && (st.ino !== BigInt(u.vfsIno) || (u.vfsDev !== undefined && st.dev !== userDev(u.vfsDev)))) return { deleted: true };
        const owner = ownerInside(this.ext.ids?.(), Number(st.uid), Number(st.gid), (why) => refuseFd(pid, fd, `unix socket file ${JSON.stringify(name)}: ${why}`));
        return { deleted: false, perms: { mode: Number(st.mode), ...owner } };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { deleted: true };
        throw e;
      }
    };
    // A file not found where the name leads may lie under a mount made over its directory since
    // (zdtm overmount_sock): the directory the name shows is then of another file system than the
    // socket's file. Binding the name again would put the socket on the covering mount (which it
    // would then hold busy): refused by name (CRIU 4.2 binds it through the socket's own mount).
    const hidden = (where: string): void => {
      if (u.vfsDev === undefined) return;
      let dev: bigint;
      try {
        dev = lstatSync(path.dirname(where), { bigint: true }).dev;
      } catch {
        return;
      }
      if (dev !== userDev(u.vfsDev)) {
        throw refuseFd(pid, fd, `unix socket bound to ${JSON.stringify(name)}, whose file lies under a mount made over its directory since (the directory now shows another file system): binding it again there is not supported by crtools yet (CRIU 4.2 binds it through the socket's own mount)`);
      }
    };
    if (name.startsWith('/')) {
      const found = look(`/proc/${pid}/root${name}`);
      if (found.deleted) hidden(`/proc/${pid}/root${name}`);
      return found;
    }
    for (const link of ['cwd', 'root']) {
      const found = look(`/proc/${pid}/${link}/${name}`);
      if (!found.deleted) return { ...found, dir: readlinkSync(`/proc/${pid}/${link}`) };
    }
    // bound elsewhere (the task changed directory since) or unlinked since: the directory the
    // kernel's own file of the socket lies in (SIOCUNIXFILE), as CRIU 4.2 finds it (zdtm
    // fifo_upon_unix_socket01: bound relative, unlinked, a FIFO made at the name, then chdir /);
    // a socket named after its listener has no file of its own
    const bound = named ? undefined : this.boundDir(pid, fd, u, name);
    if (bound) {
      const at = `/proc/${pid}/root${bound.dir}/${name}`;
      const found = look(at);
      // not unlinked, yet not found at its path: under a mount made over it since
      if (!bound.deleted && found.deleted) hidden(at);
      return { ...found, deleted: bound.deleted || found.deleted, dir: bound.dir };
    }
    hidden(`/proc/${pid}/cwd/${name}`);
    if (named) return { deleted: true, dir: readlinkSync(`/proc/${pid}/cwd`) };
    throw refuseFd(pid, fd, `unix socket bound to the relative name ${show(u.name!)}, whose file is neither in the task's working directory nor in its root: where to bind it again is not known`);
  }

  /**
   * Where task pid's socket at fd, bound to the relative `name`, was bound: the directory of the
   * file the kernel holds for it (SIOCUNIXFILE), as the task sees it, and whether that file is
   * unlinked since. Undefined when that file is not the socket's, not at `name` in its directory,
   * or its directory is not one the task reaches under its root.
   */
  private boundDir(pid: number, fd: number, u: UnixSocketDiag, name: string): { dir: string; deleted: boolean } | undefined {
    try {
      const f = unixSocketFile(pid, fd);
      if (u.vfsIno !== undefined && (f.ino !== u.vfsIno || (u.vfsDev !== undefined && BigInt(f.dev) !== userDev(u.vfsDev)))) return undefined;
      const deleted = f.path.endsWith(' (deleted)');
      const file = deleted ? f.path.slice(0, -' (deleted)'.length) : f.path;
      if (!file.startsWith('/') || !file.endsWith(`/${name}`)) return undefined;
      // the directory as the task sees it: the path is crtools' view, below the task's root when
      // crtools reaches that root (a chroot), else from the root of the task's own mount
      // namespace (one whose mounts crtools does not see); what the task finds there must be a
      // directory of the socket file's filesystem
      const shown = file.slice(0, -(name.length + 1)) || '/';
      const root = readlinkSync(`/proc/${pid}/root`);
      const dir = root === '/' ? shown : shown === root ? '/' : shown.startsWith(`${root}/`) ? shown.slice(root.length) : undefined;
      if (dir === undefined) return undefined;
      const st = lstatSync(`/proc/${pid}/root${dir}`, { bigint: true });
      return st.isDirectory() && st.dev === BigInt(f.dev) ? { dir, deleted } : undefined;
    } catch {
      return undefined;
    }
  }

  private entry(id: number, flags: number, pid: number, rec: FdRecord, u: UnixSocketDiag, role: Role): Entry {
    // a listening socket has no data queue (its queue holds connections), nor has one waiting in
    // a listener's queue (its peer is not there yet) or a stream or seqpacket one not connected
    // (its recvmsg fails: EINVAL, ENOTCONN). A datagram socket on its own may hold datagrams:
    // bound, from its senders; unnamed, from the other end of a socketpair (or connection) closed since
    const noQueue = role.kind === 'listener' || role.kind === 'waiting' || (role.kind === 'alone' && u.type !== SOCK_TYPE.DGRAM);
    const q = noQueue ? { ...socketInfo(pid, rec.fd), packets: [] as Buffer[], addrs: [], fds: [], rights: false, creds: false, zero: false } : socketQueue(pid, rec.fd, (u.shutdown & 1) !== 0);
    this.held.push(...q.fds.flat());
    if (q.creds && q.packets.length) {
      throw refuseFd(pid, rec.fd, `messages queued with their senders' credentials (SO_PASSCRED) are not supported (CRIU 4.2's image has no place for them)`);
    }
    if (q.packets.length && role.kind === 'alone' && u.type !== SOCK_TYPE.DGRAM) {
      throw refuseFd(pid, rec.fd, `messages queued on an unconnected unix ${u.type === SOCK_TYPE.STREAM ? 'stream' : 'seqpacket'} socket are not supported`);
    }
    if (q.packets.length && role.kind === 'alone' && !u.name?.length && u.state !== TCP_STATE.ESTABLISHED) {
      // (one that held a peer, closed since, is ESTABLISHED: made so again; one disconnected since is not)
      throw refuseFd(pid, rec.fd, `datagrams queued on an unnamed unix datagram socket disconnected from its peer are not supported`);
    }
    if (q.packets.length && role.kind === 'service') {
      // (criu answers only once the dump is done: what waits here came from elsewhere, and the
      // restored socket holds only that answer)
      throw refuseFd(pid, rec.fd, `messages queued on the RPC client's connection to criu (a self-dump) are not supported`);
    }
    if (q.packets.length && role.kind === 'sender' && !u.name?.length) {
      throw refuseFd(pid, rec.fd, `messages queued on an unnamed unix datagram socket connected to another are not supported`);
    }
    q.packets.forEach((data, i) => {
      const e: Entry = { id_for: id, length: data.length, extra: data };
      const from = u.type === SOCK_TYPE.DGRAM ? q.addrs[i] : null;
      // (a datagram from the other end of a pair bound to a name: that name, sent from it again)
      const fromPeer = role.kind === 'pair' && !!from && from.length > 2 && !!this.byIno.get(u.peer)?.name?.equals(from.subarray(2));
      if (from && from.length > 2 && !fromPeer) {
        if (role.kind === 'alone' && !u.name?.length) throw refuseFd(pid, rec.fd, `a datagram queued from a named socket on an unnamed unix datagram socket whose peer was closed is not supported`);
        if (role.kind === 'pair') throw refuseFd(pid, rec.fd, `a datagram queued from another socket than its peer (sent before it was connected) is not supported`);
        e.addr = from;
        this.senders.push({ ino: u.ino, what: `task ${pid} fd ${rec.fd}`, type: u.type, name: from.subarray(2) });
      }
      const fds = q.fds[i] ?? [];
      if (fds.length) {
        const rights = fds.map((fd) => this.inflight(fd, `task ${pid} fd ${rec.fd}: a descriptor in flight in its queue`));
        if (rights.some((r) => r === undefined)) return;
        e.scm = [{ type: SCM_RIGHTS, rights }];
      }
      this.queues.push(e);
    });
    const what = `task ${pid} fd ${rec.fd}`;
    this.ids.set(u.ino, id);
    const needs = (ino: number, why: string, peer?: boolean) => ({ ino, what, why, ...(peer ? { peer } : {}) });
    this.needs.set(u.ino,
      role.kind === 'pair' || role.kind === 'accepted' ? [needs(u.peer, 'is connected to', true), ...(role.kind === 'accepted' ? [needs(role.listener, 'was accepted from listener')] : [])]
      : role.kind === 'waiting' ? [needs(role.listener, 'waits in the queue of listener')]
      : role.kind === 'sender' ? [needs(role.target, 'is connected to', true)]
      : role.kind === 'listener' ? role.icons.map((c) => needs(c, 'has a connection waiting from'))
      : []);
    // the peer CRIU records: the listener for a connection waiting in its queue; none for the
    // connection to criu, recorded closed (criu's end is not in the tree)
    const service = role.kind === 'service';
    const peer = service ? 0 : role.kind === 'waiting' ? role.listener : u.peer;
    const usk: Entry = {
      id, ino: u.ino, type: u.type, state: service ? TCP_STATE.CLOSE : u.state, flags, uflags: service ? USK_FLAGS.SERVICE : 0,
      backlog: u.state === TCP_STATE.LISTEN ? (u.wqueue ?? 0) : 0, peer, fown: fown(),
      opts: readSocketOptions(pid, rec.fd).opts,
      name: u.name ?? Buffer.alloc(0),
    };
    if (u.shutdown) usk['shutdown'] = ['NONE', 'READ', 'WRITE', 'BOTH'][u.shutdown & 3];
    // (as CRIU, the namespace it was made in; written for those below the root's only)
    const ns = this.netOf.get(u.ino);
    if (ns !== undefined) usk['ns_id'] = ns;
    if (u.name?.length && u.name[0] !== 0) {
      const f = this.nameFile(pid, rec.fd, u, role.kind === 'pair' && !role.bound);
      if (f.perms) usk['file_perms'] = f.perms;
      if (f.deleted) usk['deleted'] = true;
      if (f.dir !== undefined) usk['name_dir'] = f.dir;
    }
    return { type: 'UNIXSK', id, usk };
  }

  /** Every socket a dumped one is connected to, was accepted from or has waiting must be in the dump too. */
  finish(refusals: Refusals): void {
    for (const fd of this.held.splice(0)) closeSync(fd);
    // a datagram's sender, by its name: a socket of the dump of the same type
    for (const s of this.senders) {
      // (several sockets may have a path name: one whose file was unlinked and another bound to it since)
      const found = [...this.byIno.values()].filter((x) => x.type === s.type && x.name?.equals(s.name));
      const dumped = found.filter((x) => this.needs.has(x.ino));
      const sender = dumped.length === 1 ? dumped[0] : found.length === 1 ? found[0] : undefined;
      if (sender && (this.needs.has(sender.ino) || this.refused.has(sender.ino))) continue;
      refusals.refuse(new CrtoolsError('UNSUPPORTED_FILE', `${s.what}: socket:[${s.ino}] has a datagram queued from ${show(s.name)}, ${sender ? `socket:[${sender.ino}] outside the dumped tree` : found.length ? 'a name several sockets have' : 'a socket gone'}, which is not supported`, {
        context: {}, exitCode: ExitCode.UNSUPPORTED,
      }));
    }
    // outside peers allowed: inode → the files.img ids of the tree's sockets connected to it
    const outside = new Map<number, number[]>();
    for (const [ino, list] of this.needs) {
      for (const n of list) {
        if (this.needs.has(n.ino) || this.refused.has(n.ino)) continue; // dumped, or refused on its own
        const why = n.peer ? this.outsidePeer(ino, n.ino) : '';
        if (why === undefined) {
          outside.set(n.ino, [...(outside.get(n.ino) ?? []), this.ids.get(ino)!]);
          continue;
        }
        refusals.refuse(new CrtoolsError('UNSUPPORTED_FILE', `${n.what}: socket:[${ino}] ${n.why} socket:[${n.ino}] outside the dumped tree, which is not supported${why}`, {
          context: {}, exitCode: ExitCode.UNSUPPORTED,
        }));
      }
    }
    for (const [ino, users] of outside) this.externOf(ino, users);
  }

  /**
   * May socket `ino` of the tree keep its peer `peerIno` outside it? undefined when it may (as
   * CRIU 4.2: named with --external unix[INO]; with --ext-unix-sk, a datagram peer bound to a
   * name, the tree's socket unnamed, since it is made again by connecting to that name), else
   * what is missing, for the refusal.
   */
  private outsidePeer(ino: number, peerIno: number): string | undefined {
    if (this.ext.external?.has(ino)) return undefined;
    const peer = this.byIno.get(peerIno)!;
    const hint = ` (--external unix[${ino}] names it: restored from a descriptor handed over, --inherit-fd fd[N]:socket:[${ino}])`;
    if (!this.ext.extUnixSk) return ` without --ext-unix-sk${hint}`;
    if (peer.type !== SOCK_TYPE.DGRAM) return ` with --ext-unix-sk: the peer is a ${peer.type === SOCK_TYPE.STREAM ? 'stream' : 'seqpacket'} socket, half a connection${hint}`;
    if (!peer.name?.length) return ` with --ext-unix-sk: the peer has no name to connect to again${hint}`;
    if (this.byIno.get(ino)?.name?.length) return ` with --ext-unix-sk yet: the tree's socket is bound to a name${hint}`;
    return undefined;
  }

  /**
   * The record of a peer outside the dumped tree, placed before the records of the tree's
   * sockets connected to it (`users`: CRIU's restore finds a peer that does not connect back
   * only among the records it has read).
   */
  private externOf(ino: number, users: readonly number[]): void {
    if (!this.add) return;
    const u = this.byIno.get(ino)!;
    // as CRIU writes it: a datagram socket in state LISTEN with the peer's name, marked EXTERN
    this.add((id) => ({
      type: 'UNIXSK', id, usk: {
        id, ino, type: SOCK_TYPE.DGRAM, state: TCP_STATE.LISTEN, flags: 0, uflags: USK_FLAGS.EXTERN, backlog: 0, peer: 0, fown: fown(),
        opts: { so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 0n, so_rcv_tmo_usec: 0n },
        name: u.name ?? Buffer.alloc(0),
      },
    }), users);
  }

  images(): DumpImage[] {
    return [{ file: 'sk-queues.img', magic: 'SK_QUEUES', entries: this.queues }];
  }
}
