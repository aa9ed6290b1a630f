/**
 * Plan → binary plan block (layout.json), plus the address-space bookkeeping the blob needs:
 * where the region sits, where the vDSO pieces go, which fds are free for the file table.
 */
import { CrtoolsError, ExitCode, PAGE_SIZE_BIGINT } from '@crtools/common';
import { CONST, PLAN_MAGIC, PLAN_VERSION, PlanWriter, fieldOffset, recordSize, type RecordValues } from './layout.js';
import type { SockoptCall, UnixMessage } from '@crtools/files/plan';
import { idOutside, MAP, overflowId, UNMAPPED_ID, type IdExtent } from '@crtools/procfs';
import { cowLayout, mapProts } from './cow.js';
import { byAddress, coveredUpTo, endingAfterCursor, spanAt } from './areas.js';
import type { EpollTarget, FilePlan, RestorePlan, TaskPlan, ThreadPlan, TimerFilePlan, TtyFilePlan, VmaPlan } from './plan.js';

const PAGE = PAGE_SIZE_BIGINT;

/** A mapping of the launcher that is carried into every task: [vvar], [vvar_vclock], [vdso]. */
export interface SpecialMapping {
  name: string;
  start: bigint;
  end: bigint;
}

export interface RegionLayout {
  start: bigint;
  size: bigint;
  codeSize: bigint;
  planOff: bigint;
  parkOff: bigint;
  statusOff: bigint;
  statusSize: bigint;
  stackOff: bigint;
  stackSize: bigint;
  nstacks: number;
}

export const STACK_SIZE = 256n * 1024n;

const pageUp = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);

function unsupported(code: string, msg: string, pid?: number): CrtoolsError {
  return new CrtoolsError(code, msg, { exitCode: ExitCode.UNSUPPORTED, context: pid === undefined ? {} : { pid } });
}

/** Where each current special mapping must go in this task (~0 = unmap it). */
export function specialTargets(task: TaskPlan, cur: SpecialMapping[]): bigint[] {
  const none = (1n << 64n) - 1n;
  const vvars = task.vmas.filter((v) => v.kind === 'vvar').sort((a, b) => (a.start < b.start ? -1 : 1));
  const vdsos = task.vmas.filter((v) => v.kind === 'vdso');
  const curVvar = cur.filter((m) => m.name === '[vvar]' || m.name === '[vvar_vclock]').sort((a, b) => (a.start < b.start ? -1 : 1));
  const curVdso = cur.filter((m) => m.name === '[vdso]');
  const out = new Map<SpecialMapping, bigint>();
  if (vvars.length) {
    for (let i = 1; i < vvars.length; i++) {
      if (vvars[i]!.start !== vvars[i - 1]!.end) throw unsupported('RESTORE_VDSO_MISMATCH', `pid ${task.pid}: recorded [vvar] area is not contiguous`, task.pid);
    }
    const recLen = vvars[vvars.length - 1]!.end - vvars[0]!.start;
    const curLen = curVvar.reduce((s, m) => s + (m.end - m.start), 0n);
    if (recLen !== curLen) {
      throw unsupported('RESTORE_VDSO_MISMATCH', `pid ${task.pid}: recorded vvar area is ${recLen / PAGE} pages, this kernel has ${curLen / PAGE}`, task.pid);
    }
    let at = vvars[0]!.start;
    for (const m of curVvar) {
      out.set(m, at);
      at += m.end - m.start;
    }
  }
  if (vdsos.length) {
    if (vdsos.length !== 1 || curVdso.length !== 1 || vdsos[0]!.end - vdsos[0]!.start !== curVdso[0]!.end - curVdso[0]!.start) {
      throw unsupported('RESTORE_VDSO_MISMATCH', `pid ${task.pid}: recorded [vdso] differs in size from this kernel's`, task.pid);
    }
    out.set(curVdso[0]!, vdsos[0]!.start);
  }
  return cur.map((m) => out.get(m) ?? none);
}

/** shmat(2) flags */
const SHM_RDONLY = 0o10000;
const SHM_EXEC = 0o100000;

function vmaKind(v: VmaPlan): bigint {
  switch (v.kind) {
    case 'anon':
      return CONST.VMA_ANON;
    case 'file-private':
      return CONST.VMA_FILE_PRIVATE;
    case 'file-shared':
      return CONST.VMA_FILE_SHARED;
    case 'sysv':
      return CONST.VMA_SYSV;
    case 'socket':
      return CONST.VMA_SOCKET;
    default:
      return CONST.VMA_SKIP;
  }
}

/**
 * Which page runs of a task are filled with UFFDIO_COPY (by the blob and, in parallel, by the
 * launcher): runs of at least UFFD_MIN_PAGES pages lying wholly in private anonymous areas
 * (userfaultfd takes no private file mappings) that the task maps anew (an area taken over from
 * its parent, cow.ts, has pages already: its runs are compared and written by the blob). Both
 * sides cut these runs into PAGE_CHUNK pieces in this order and claim the pieces through the
 * task's status record.
 */
export function uffdRunFlags(plan: RestorePlan, i: number): boolean[] {
  return uffdLayout(plan, i).runs;
}

/** Per plan and task (the encoder and the launcher's copy helper both ask): which runs, which areas. */
const uffdLayouts = new WeakMap<RestorePlan, { runs: boolean[]; areas: VmaPlan[] }[]>();

function uffdLayout(plan: RestorePlan, i: number): { runs: boolean[]; areas: VmaPlan[] } {
  let l = uffdLayouts.get(plan);
  if (!l) {
    const cow = cowLayout(plan);
    // a lazy restore fills what it fills with pread: the lazy areas get the task's own userfaultfd
    if (plan.lazy) l = plan.tasks.map((t) => ({ runs: t.pages.map(() => false), areas: [] }));
    else l = plan.tasks.map((t, k) => computeUffdLayout(t, new Set(t.vmas.filter((_, j) => cow[k]!.inherits[j]! >= 0))));
    uffdLayouts.set(plan, l);
  }
  return l[i]!;
}

function computeUffdLayout(t: TaskPlan, inherited: ReadonlySet<VmaPlan>): { runs: boolean[]; areas: VmaPlan[] } {
  // (no run long enough for userfaultfd: no area registered, no run through it, and no search)
  if (!t.pages.some((r) => r.npages >= CONST.UFFD_MIN_PAGES)) return { runs: t.pages.map(() => false), areas: [] };
  // (huge pages: UFFDIO_COPY takes whole huge pages only; their runs are read with pread)
  // (sorted only if the plan's order is not the address order: byAddress)
  const anon = byAddress(t.vmas.filter((v) => v.kind === 'anon' && !(v.flags & MAP.HUGETLB) && !inherited.has(v))).sorted;
  const flags = t.pages.map((r) => r.npages >= CONST.UFFD_MIN_PAGES && coveredUpTo(anon, r.vaddr, r.vaddr + r.npages * PAGE) >= r.vaddr + r.npages * PAGE);
  // an area is registered whole (uffdAreas): every run in it goes through userfaultfd then
  const areas = uffdAreas(t, flags);
  const registered = byAddress(areas).sorted;
  // (the runs in address order, as the images have them: the area of each found by a cursor)
  const after = endingAfterCursor(registered);
  return { runs: t.pages.map((r, k) => flags[k] || spanAt(registered, r.vaddr, after(r.vaddr)) >= 0), areas };
}

/**
 * The areas registered with userfaultfd: every private anonymous area holding a run that goes
 * through it. Registered whole, never in pieces: registering a piece splits the area, and the
 * pieces, each given its own anon_vma by the first page copied in, never merge again (the task
 * would find one area cut into many).
 */
export function uffdAreas(t: TaskPlan, flags: boolean[]): VmaPlan[] {
  const { sorted, place } = byAddress(t.vmas);
  const holds = t.vmas.map(() => false);
  t.pages.forEach((r, k) => {
    const i = flags[k] ? spanAt(sorted, r.vaddr) : -1;
    if (i >= 0) holds[place[i]!] = true;
  });
  return t.vmas.filter((v, k) => v.kind === 'anon' && holds[k]);
}

export const SIGINFO_SIZE = 128;

/** Pending signals as one block of 128-byte siginfo_t records (0 = none). */
function sigBlock(w: PlanWriter, sigs: Buffer[] | undefined, who: string): number {
  if (!sigs?.length) return 0;
  for (const s of sigs) {
    if (s.length !== SIGINFO_SIZE) throw new CrtoolsError('RESTORE_BAD_PLAN', `${who}: a pending siginfo is ${s.length} bytes, not ${SIGINFO_SIZE}`, { exitCode: ExitCode.BAD_INPUT });
    const signo = s.readInt32LE(0);
    if (signo < 1 || signo > 64) throw new CrtoolsError('RESTORE_BAD_PLAN', `${who}: pending signal number ${signo} is out of range`, { exitCode: ExitCode.BAD_INPUT });
  }
  return w.bytes(Buffer.concat(sigs), 8);
}

/** SECCOMP_FILTER_FLAG_TSYNC, _LOG, _SPEC_ALLOW */
const SECCOMP_FLAGS = 1n | 2n | 4n;

/** A thread's seccomp filters, oldest first: `seccomp` records (instructions, flags, program bytes); 0 = none. */
function seccompBlock(w: PlanWriter, sc: ThreadPlan['seccomp'], who: string): number {
  if (!sc) return 0;
  const bad = (why: string) => new CrtoolsError('RESTORE_BAD_PLAN', `${who}: ${why}`, { exitCode: ExitCode.BAD_INPUT });
  if (sc.strict && sc.filters.length) throw bad('seccomp strict mode with filters');
  if (!sc.strict && !sc.filters.length) throw bad('seccomp filter mode without filters');
  const recs = sc.filters.map((f, i) => {
    if (f.filter.length === 0 || f.filter.length % 8 !== 0 || f.filter.length > 4096 * 8) throw bad(`seccomp filter ${i} is ${f.filter.length} bytes`);
    if (BigInt(f.flags) & ~SECCOMP_FLAGS) throw bad(`seccomp filter ${i} has flags 0x${f.flags.toString(16)}`);
    return { len: f.filter.length / 8, flags: f.flags, data: w.bytes(f.filter, 8) };
  });
  return recs.length ? w.records('seccomp', recs) : 0;
}

const FILE_KINDS: Record<FilePlan['kind'], bigint> = {
  reg: CONST.FILE_REG, 'pipe-r': CONST.FILE_PIPE_R, 'pipe-w': CONST.FILE_PIPE_W,
  eventfd: CONST.FILE_EVENTFD, signalfd: CONST.FILE_SIGNALFD, epoll: CONST.FILE_EPOLL, timerfd: CONST.FILE_TIMERFD, unix: CONST.FILE_UNIX, 'unix-bound': CONST.FILE_UNIX_BOUND, inet: CONST.FILE_INET,
  // netlink and packet sockets are made like IP ones on their own: socket, options, bind, connect
  socket: CONST.FILE_INET,
  inotify: CONST.FILE_INOTIFY, fanotify: CONST.FILE_FANOTIFY, inherit: CONST.FILE_INHERIT,
  // a TCP connection is made by the restoring process and handed over as inherited (src/tcp.ts)
  // so is a tun file (src/tun.ts)
  tcp: CONST.FILE_INHERIT, tun: CONST.FILE_INHERIT, pidfd: CONST.FILE_PIDFD, fifo: CONST.FILE_FIFO, tty: CONST.FILE_TTY,
  // a memfd is opened again like a file, through the restoring process's descriptor on it
  memfd: CONST.FILE_REG,
};

/** zero bytes that bring a record of `length` bytes to a multiple of 8 */
function pad8(length: number): Buffer {
  return Buffer.alloc((8 - (length % 8)) % 8);
}

/**
 * A unix socket's queue for the blob's send_queue: each message's length, sender (plan index + 1,
 * 0: the default one), count and plan indexes of the descriptors it carries, then its bytes
 * padded to 8.
 */
function socketQueue(messages: UnixMessage[]): Buffer | undefined {
  if (!messages.length) return undefined;
  const parts: Buffer[] = [];
  for (const m of messages) {
    const fds = m.fds ?? [];
    const head = Buffer.alloc(24 + fds.length * 8);
    head.writeBigUInt64LE(BigInt(m.data.length), 0);
    head.writeBigUInt64LE(BigInt(m.from === undefined ? 0 : m.from + 1), 8);
    head.writeBigUInt64LE(BigInt(fds.length), 16);
    fds.forEach((f, i) => head.writeBigUInt64LE(BigInt(f), 24 + i * 8));
    parts.push(head, m.data, pad8(m.data.length));
  }
  return Buffer.concat(parts);
}

function timerfdRecord(t: TimerFilePlan['timer']): Buffer {
  const b = Buffer.alloc(48);
  [BigInt(t.clockId), t.ticks, t.vsec, t.vnsec, t.isec, t.insec].forEach((v, i) => b.writeBigUInt64LE(BigInt.asUintN(64, v), i * 8));
  return b;
}

/**
 * Records of two words and a path: (a, b, path length, path NUL-terminated and padded to 8)
 * each. inotify watches are (wd, mask, path); fanotify marks (fanotify_mark flags, mask, path).
 */
function pathRecords(rows: readonly [number, number, string][]): Buffer | undefined {
  if (!rows.length) return undefined;
  const parts: Buffer[] = [];
  for (const [a, b, p] of rows) {
    const path = Buffer.from(p + '\0');
    const head = Buffer.alloc(24);
    head.writeBigUInt64LE(BigInt(a >>> 0), 0);
    head.writeBigUInt64LE(BigInt(b >>> 0), 8);
    head.writeBigUInt64LE(BigInt(path.length), 16);
    parts.push(head, path, pad8(path.length));
  }
  return Buffer.concat(parts);
}

function epollTargets(targets: EpollTarget[]): Buffer | undefined {
  if (!targets.length) return undefined;
  const b = Buffer.alloc(targets.length * 24);
  targets.forEach((t, i) => {
    b.writeBigUInt64LE(BigInt(t.fd), i * 24);
    b.writeBigUInt64LE(BigInt(t.events >>> 0), i * 24 + 8);
    b.writeBigUInt64LE(BigInt.asUintN(64, t.data), i * 24 + 16);
  });
  return b;
}

const O_ASYNC = 0o20000;

/**
 * A file's I/O signal settings (owner, signal, O_ASYNC), set by `holder`, the first task that
 * holds it at a descriptor (the blob's restore_fown); none when no task does.
 */
/**
 * A terminal's data block: termios (36 bytes, padded to 40), locked termios (40), window size (4
 * u16), then `more` bytes (a master's queued bytes: see the tty case).
 */
function ttyData(t: Pick<TtyFilePlan, 'termios' | 'termiosLocked' | 'winsize'>, more = 0): Buffer {
  const d = Buffer.alloc(88 + more);
  t.termios.copy(d, 0, 0, 36);
  t.termiosLocked.copy(d, 40, 0, 36);
  t.winsize.forEach((v, k) => d.writeUInt16LE(v, 80 + 2 * k));
  return d;
}

function fownRecord(f: FilePlan, holder: number | undefined): RecordValues {
  const o = f.fown;
  if (holder === undefined || (!o && !(f.flags & O_ASYNC))) return { fown_task: 0, fown_signum: 0, fown_type: 0, fown_pid: 0, fown_uid: 0, fown_euid: 0 };
  return { fown_task: holder, fown_signum: o?.signum ?? 0, fown_type: o?.pid ? o.pidType : 0, fown_pid: o?.pid ?? 0, fown_uid: o?.uid ?? 0, fown_euid: o?.euid ?? 0 };
}

/**
 * One file's record. Fields a kind does not use stay 0; its variable part (pipe data, epoll
 * targets, a timerfd's settings, queued messages, a socket address, inotify watches) goes to
 * data_off/data_len.
 */
/** The held descriptor (+ 1) of network namespace `id` of the tree, as the launcher placed it (RestorePlan.netHeld). */
function netHeldIndex(netHeld: RestorePlan['netHeld'], id: number): number {
  const k = netHeld?.byId.get(id);
  if (k === undefined) throw new Error(`restore plan: network namespace ${id} is not held for the tasks`);
  return k + 1;
}

/** no id given (the blob takes its own task's) */
const NO_ID = 0xffffffff;

/**
 * A terminal's owner the tree's user namespace did not map at dump is written as the overflow
 * ids (as CRIU writes it: a pty master's, the ptmx node's): one the namespace does not map now
 * either is no owner to the blob (UNMAPPED_ID: it takes the slave's, or criu's).
 */
function withUnmappedTtyOwner(r: RecordValues, maps: { uid: IdExtent[]; gid: IdExtent[] }): RecordValues {
  if (Number(r.tty_uid) === overflowId('uid') && idOutside(maps.uid, Number(r.tty_uid)) === UNMAPPED_ID) r.tty_uid = UNMAPPED_ID;
  if (Number(r.tty_gid) === overflowId('gid') && idOutside(maps.gid, Number(r.tty_gid)) === UNMAPPED_ID) r.tty_gid = UNMAPPED_ID;
  return r;
}

function fileRecord(w: PlanWriter, f: FilePlan, holder: number | undefined, netHeld?: RestorePlan['netHeld']): RecordValues {
  const r: RecordValues = {
    // (a file opened late: by the root once every task exists, see the blob's restore_late_files;
    // an inotify instance watching a file of a nested mount namespace is made then too)
    kind: (f.kind === 'reg' || f.kind === 'inotify') && f.late ? CONST.FILE_LATE : FILE_KINDS[f.kind], path: 0, flags: f.flags, pos: f.pos, size: -1n, pipe_id: 0, data_off: 0, data_len: 0, pipe_size: 0,
    value: 0n, owner: 0, sk_peer: 0, sk_sndbuf: 0, sk_rcvbuf: 0, sk_shutdown: 0, sk_family: 0, sk_proto: 0, sk_listen: 0, sk_backlog: 0, sk_opts: 0, sk_nsetopts: 0, sk_setopts_off: 0,
    sk_target: 0, sk_ghost: 0, sk_mode: 0, sk_uid: 0, sk_gid: 0, sk_queue_off: 0, sk_queue_len: 0, sk_conn_off: 0, sk_conn_len: 0,
    tty_index: 0, tty_bits: 0, tty_sid: 0, tty_pgrp: 0, tty_uid: 0, tty_gid: 0, sk_euid: NO_ID, sk_egid: NO_ID,
    ...fownRecord(f, holder),
    // a socket of a network namespace below the root's: the held descriptor on it + 1
    netns: f.netns !== undefined ? netHeldIndex(netHeld, f.netns) : 0,
  };
  const data = (b: Buffer | undefined) => {
    r.data_off = w.bytes(b, 8);
    r.data_len = b?.length ?? 0;
  };
  // a socket's setsockopt calls, made in order once it exists (before bind); a late one (bit 32
  // of its level) once it is bound and connected
  const setopts = (calls: readonly SockoptCall[]) => ({
    sk_nsetopts: calls.length,
    sk_setopts_off: calls.length ? w.records('sockopt', calls.map((c) => ({ level: c.level + (c.late ? 2 ** 32 : 0), name: c.name, len: c.value.length, data: w.bytes(c.value, 8) }))) : 0,
  });
  const connect = (to: Buffer | undefined) => ({ sk_conn_off: to ? w.bytes(to, 8) : 0, sk_conn_len: to?.length ?? 0 });
  switch (f.kind) {
    case 'reg':
      Object.assign(r, { path: w.string(f.path), size: f.size ?? -1n });
      break;
    case 'memfd':
      if (!f.path) throw new CrtoolsError('RESTORE_BAD_PLAN', `restore plan: memfd file (object ${f.shmem}) has no path to open it by`, { exitCode: ExitCode.BAD_INPUT });
      r.path = w.string(f.path);
      // memfd_create's own open file, inherited from the restoring process: taken as it is (value: its descriptor + 1)
      if (f.heldFd !== undefined) r.value = BigInt(f.heldFd + 1);
      break;
    case 'pipe-r':
    case 'pipe-w':
      Object.assign(r, { pipe_id: f.pipeId, pipe_size: f.pipeSize ?? 0 });
      data(f.data);
      break;
    case 'eventfd':
    case 'signalfd':
      r.value = f.value;
      break;
    case 'epoll':
      r.owner = f.owner;
      data(epollTargets(f.targets));
      break;
    case 'timerfd':
      data(timerfdRecord(f.timer));
      break;
    case 'unix':
      Object.assign(r, {
        value: BigInt(f.type), sk_peer: f.socket.peer + 1, sk_sndbuf: f.socket.sndbuf, sk_rcvbuf: f.socket.rcvbuf, sk_shutdown: f.socket.shutdown,
        sk_target: f.socket.listener === undefined ? 0 : f.socket.listener + 1,
        // an end's name (and a relative one's directory): the accepted end of a connection whose
        // listener was closed, named after it without a file (sk_ghost), or a datagram pair end
        // bound to a name of its own, with its file (and owner and mode) or unlinked since
        path: f.socket.dir ? w.string(f.socket.dir) : 0,
        sk_ghost: f.socket.name && (!f.socket.own || f.socket.own.unlinked) ? 1 : 0,
        sk_mode: f.socket.own?.perms?.mode ?? 0, sk_uid: f.socket.own?.perms?.uid ?? 0, sk_gid: f.socket.own?.perms?.gid ?? 0,
      }, setopts(f.socket.sockopts), connect(f.socket.name));
      data(socketQueue(f.socket.queue));
      break;
    case 'unix-bound': {
      const u = f.unixBound;
      const queue = socketQueue(u.queue ?? []);
      Object.assign(r, {
        value: BigInt(f.type), sk_sndbuf: u.sndbuf, sk_rcvbuf: u.rcvbuf, sk_listen: u.listen ? 1 : 0, sk_backlog: u.backlog, sk_shutdown: u.shutdown ?? 0,
        sk_target: u.connect === undefined ? 0 : u.connect + 1, sk_ghost: u.unlinked ? 1 : 0,
        sk_mode: u.perms?.mode ?? 0, sk_uid: u.perms?.uid ?? 0, sk_gid: u.perms?.gid ?? 0,
        sk_queue_off: queue ? w.bytes(queue, 8) : 0, sk_queue_len: queue?.length ?? 0,
        // a relative name: the directory it is bound in
        path: u.dir ? w.string(u.dir) : 0,
      }, setopts(u.sockopts));
      data(u.address);
      break;
    }
    case 'inet': {
      const i = f.inet;
      Object.assign(r, {
        value: BigInt(f.type), sk_sndbuf: i.sndbuf, sk_rcvbuf: i.rcvbuf, sk_family: i.family, sk_proto: i.protocol, sk_listen: i.listen ? 1 : 0, sk_shutdown: i.shutdown ?? 0,
        sk_backlog: i.backlog, sk_opts: (i.reuseaddr ? 1 : 0) | (i.reuseport ? 2 : 0) | (i.v6only ? 4 : 0) | (i.forceBind ? 8 : 0) | (i.freebind ? 16 : 0),
      }, setopts(i.sockopts), connect(i.connect));
      data(i.address);
      break;
    }
    case 'socket': {
      const s = f.socket;
      Object.assign(r, { value: BigInt(f.type), sk_sndbuf: s.sndbuf, sk_rcvbuf: s.rcvbuf, sk_family: s.family, sk_proto: s.protocol }, setopts(s.sockopts), connect(s.connect));
      data(s.address);
      break;
    }
    case 'inotify':
      if (f.late) r.value = BigInt(CONST.LATE_INOTIFY);
      data(pathRecords(f.watches.map((w) => [w.wd, w.mask, w.path])));
      break;
    case 'fanotify':
      r.value = (BigInt(f.evflags) << 32n) | BigInt(f.faflags);
      data(pathRecords(f.marks.map((m) => [m.flags, m.mask, m.path])));
      break;
    case 'inherit':
      r.value = BigInt(f.inheritFd);
      // a terminal handed over: its settings (data as a tty's), owner and session
      if (f.tty) {
        data(ttyData(f.tty));
        Object.assign(r, { tty_bits: CONST.TTY_EXT | (f.tty.steal ? CONST.TTY_STEAL : 0n), tty_uid: f.tty.uid, tty_gid: f.tty.gid, tty_sid: f.tty.ctty?.sid ?? 0, tty_pgrp: f.tty.ctty?.pgrp ?? 0 });
      }
      break;
    case 'tcp':
      throw new CrtoolsError('RESTORE_BAD_PLAN', `restore plan: TCP connection socket:[${f.tcp.ino}] was not made before the plan was encoded`, { exitCode: ExitCode.BAD_INPUT });
    case 'tun':
      throw new CrtoolsError('RESTORE_BAD_PLAN', 'restore plan: a tun file was not made before the plan was encoded', { exitCode: ExitCode.BAD_INPUT });
    case 'fifo':
      Object.assign(r, { path: w.string(f.path), pipe_id: f.pipeId, pipe_size: f.pipeSize ?? 0 });
      data(f.data);
      break;
    case 'tty': {
      // data: termios (36 bytes, padded to 40), locked termios (40), winsize (4 u16); a master with
      // bytes queued then: u32 for the slave to read, u32 for the master to read, those bytes
      const q = f.queued;
      const d = ttyData(f, q ? 8 + q.toSlave.length + q.toMaster.length : 0);
      if (q) {
        d.writeUInt32LE(q.toSlave.length, 88);
        d.writeUInt32LE(q.toMaster.length, 92);
        q.toSlave.copy(d, 96);
        q.toMaster.copy(d, 96 + q.toSlave.length);
      }
      Object.assign(r, {
        path: w.string(f.path), tty_index: f.index, tty_uid: f.uid, tty_gid: f.gid, tty_sid: f.ctty?.sid ?? 0, tty_pgrp: f.ctty?.pgrp ?? 0,
        tty_bits: (f.master ? CONST.TTY_MASTER : 0n) | (f.packetMode ? CONST.TTY_PACKET : 0n) | (f.locked ? CONST.TTY_LOCKED : 0n) | (f.exclusive ? CONST.TTY_EXCL : 0n) | (f.devTty ? CONST.TTY_DEVTTY : 0n) | (f.hung ? CONST.TTY_HUNG : 0n) | (f.simple ? CONST.TTY_SIMPLE : 0n),
      });
      data(d);
      break;
    }
    case 'pidfd':
      // -1: a process gone (the blob makes one and reaps it: one for the pidfds with the same
      // pipe_id, the gone process's inode)
      r.value = BigInt.asUintN(64, BigInt(f.pid));
      r.pipe_id = f.ino ?? 0;
      break;
  }
  return r;
}

/** The task whose address space `t` starts from (its forker; a zombie forker restores none: the one above it). */
function mmParent(plan: RestorePlan, t: TaskPlan): bigint | number {
  let p = t.parent;
  while (p >= 0 && plan.tasks[p]!.zombie) p = plan.tasks[p]!.parent;
  return p < 0 ? CONST.NO_PARENT : p;
}

/**
 * The first descriptor of the tree's file table in the root (plan hdr fd_base): above every
 * descriptor a task gets and every one handed over to inherit (a memfd's, held; the restoring
 * process's own the root takes, RestorePlan.held). Files n of the table are at fd_base + n, a
 * second table of n above them is the blob's own (descriptors kept aside), and the held ones
 * follow: heldFdBase.
 */
export function planFdBase(plan: RestorePlan): number {
  const handed = (f: FilePlan) => (f.kind === 'inherit' ? f.inheritFd : f.kind === 'memfd' ? (f.heldFd ?? 0) : 0);
  const maxFd = plan.files.reduce((m, f) => Math.max(m, handed(f)), plan.tasks.reduce((m, t) => t.fds.reduce((mm, f) => Math.max(mm, f.fd), m), Math.max(2, ...(plan.held ?? []))));
  return Math.max(maxFd + 1, 16);
}

/** The descriptor the k-th of RestorePlan.held is at in every task (+ k): tasks open it as their own /proc/self/fd/N. */
export function heldFdBase(plan: RestorePlan): number {
  return planFdBase(plan) + 2 * plan.files.length;
}

/**
 * About the bytes encodeBody writes for a plan (its records and the strings of the areas; what
 * else it holds fits in the margin, and the writer grows if not).
 */
function sizeHint(plan: RestorePlan): number {
  let n = (1 << 16) + recordSize('hdr') + plan.files.length * (recordSize('file') + 256);
  for (const t of plan.tasks) {
    n += recordSize('task') + t.vmas.length * recordSize('vma') + t.pages.length * recordSize('run') + t.fds.length * recordSize('fd');
    n += t.threads.length * (recordSize('thread') + 4096);
    for (const v of t.vmas) if (v.path !== undefined) n += v.path.length * 3 + 1;
  }
  return n;
}

/** Encode everything but the header; returns the writer (header rewritten later by `finishPlan`). */
export function encodeBody(plan: RestorePlan, specials: SpecialMapping[]): { w: PlanWriter; fdBase: number } {
  const w = new PlanWriter(sizeHint(plan));
  w.alloc(recordSize('hdr'));
  // above every descriptor a task gets and every one handed over to inherit (or a memfd's, held)
  const fdBase = planFdBase(plan);
  const holders = new Map<number, number>();
  for (const t of plan.tasks) if (!t.zombie) for (const d of t.fds) if (!holders.has(d.file)) holders.set(d.file, t.pid);
  const byPid = new Map(plan.tasks.map((t) => [t.pid, t]));
  const maps = plan.namespaces?.userns;
  const files = plan.files.map((f, i) => {
    const r = fileRecord(w, f, holders.get(i), plan.netHeld);
    // a listener's credentials (listen records the caller's effective ids): its first holder's
    const creds = byPid.get(holders.get(i) ?? -1)?.creds;
    Object.assign(r, { sk_euid: creds?.euid ?? NO_ID, sk_egid: creds?.egid ?? NO_ID });
    // (the owners a record carries — a socket file's, a terminal's, an I/O signal owner's uids —
    // are ids inside the tree's user namespace as the images keep them: the tasks make their calls there)
    return maps ? withUnmappedTtyOwner(r, maps) : r;
  });
  const filesOff = w.records('file', files);
  const taskVals: RecordValues[] = plan.tasks.map((t, ti) => {
    const targets = specialTargets(t, specials);
    const threads = t.threads.map((th) => ({
      tid: th.tid,
      ...th.regs,
      fxsave_off: w.bytes(th.fxsave),
      xstate_bv: th.xstateBv,
      ymmh_off: w.bytes(th.ymmh),
      opmask_off: w.bytes(th.opmask),
      zmm_upper_off: w.bytes(th.zmmUpper),
      hi16_zmm_off: w.bytes(th.hi16Zmm),
      pkru: th.pkru ?? 0,
      has_pkru: th.pkru !== undefined,
      blk_sigset: th.blkSigset,
      sas_sp: th.sas.sp,
      sas_size: th.sas.size,
      sas_flags: th.sas.flags,
      clear_tid: th.clearTid,
      rseq_ptr: th.rseq?.ptr ?? 0n,
      rseq_len: th.rseq?.len ?? 0,
      rseq_sig: th.rseq?.sig ?? 0,
      rseq_cs: th.rseq?.cs ?? 0n,
      comm: w.string(th.comm),
      nsigs: th.pendingSignals?.length ?? 0,
      sigs_off: sigBlock(w, th.pendingSignals, `tid ${th.tid}`),
      has_sched: th.sched !== undefined,
      sched_policy: th.sched?.policy ?? 0,
      sched_prio: th.sched?.prio ?? 0,
      sched_nice: BigInt(th.sched?.nice ?? 0),
      robust_head: th.robustList?.head ?? 0n,
      robust_len: th.robustList?.len ?? 0n,
      seccomp_mode: th.seccomp ? (th.seccomp.strict ? 1 : 2) : 0,
      nseccomp: th.seccomp?.filters.length ?? 0,
      seccomp_off: seccompBlock(w, th.seccomp, `tid ${th.tid}`),
    }));
    const { runs: uffd, areas } = uffdLayout(plan, ti);
    // a word written into a page the daemon has not served yet would leave the rest of it zero
    const patchedLazy = plan.lazy && t.patches?.find((p) => t.lazyRanges?.some((r) => r.start <= p.addr && p.addr < r.end));
    if (patchedLazy) throw new CrtoolsError('UNSUPPORTED', `pid ${t.pid}: --lazy-pages with code re-pointed for this CPU (a patch at ${patchedLazy.addr.toString(16)} in a lazy page) is not supported`, { exitCode: ExitCode.UNSUPPORTED, context: { pid: t.pid } });
    const prots = mapProts(t);
    const cow = cowLayout(plan)[ti]!;
    const registered = new Set(areas);
    // (each area's values made as it is written: none of them held at once)
    const vmaOf = (k: number): RecordValues => {
      const v = t.vmas[k]!;
      return {
        start: v.start,
        end: v.end,
        pgoff: v.pgoff,
        prot: v.prot,
        flags: v.flags,
        kind: vmaKind(v),
        path: w.string(v.path),
        // a SysV attach: shmat's flags (read-only, executable) instead
        open_flags: v.kind === 'sysv' ? (v.prot & 2 ? 0 : SHM_RDONLY) | (v.prot & 4 ? SHM_EXEC : 0) : v.openFlags ?? 0,
        // a SysV attach: its segment; a packet socket's rings: the task's descriptor they are mapped from
        shmid: v.kind === 'socket' ? v.socket!.fd : v.shmid ?? 0,
        file_size: v.fileSize ?? -1n,
        madv: v.madv ?? 0n,
        // mapped as the task had it unless the restorer writes into it: a private area mapped
        // writable once is charged to the commit limit (VM_ACCOUNT) for good, as it was not before
        map_prot: prots[k]!,
        uffd: registered.has(v) ? 1 : 0,
        // taken over from the parent (its area index + 1), mapped and filled before this task was forked
        inherit: cow.inherits[k]! + 1,
        lazy: plan.lazy && v.lazy ? 1 : 0,
      };
    };
    // (a lazy restore: the lazy pages are not runs at all, TaskPlan.lazyRanges, left to the daemon)
    const runOf = (k: number): RecordValues => {
      const r = t.pages[k]!;
      return { vaddr: r.vaddr, npages: r.npages, off: r.offset, path: r.path === undefined || r.path === t.pagesPath ? 0 : w.string(r.path), uffd: uffd[k], cmp: cow.compare[k], refill: cow.refill[k] };
    };
    const sig = Array.from({ length: 64 }, (_, i) => t.sigactions[i] ?? { handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
    const it = Array.from({ length: 3 }, (_, i) => t.itimers[i] ?? { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n });
    const m = t.mm;
    return {
      pid: t.pid,
      parent: t.parent < 0 ? CONST.NO_PARENT : t.parent,
      pgid: t.pgid,
      sid: t.sid,
      nthreads: t.threads.length,
      threads_off: w.records('thread', threads),
      nvmas: t.vmas.length,
      vmas_off: w.recordsOf('vma', t.vmas.length, vmaOf),
      share_files: !!t.shareFiles,
      // forked by a helper process (its index + 1); the address space it starts from: its host's,
      // or, the host a zombie (which restores none), the nearest forker above that did
      via_helper: t.viaHelper === undefined ? 0 : t.viaHelper + 1,
      mm_parent: mmParent(plan, t),
      born_sid: t.bornSid ?? 0,
      ndead: t.deadPids?.length ?? 0,
      dead_off: t.deadPids?.length ? w.u64s(t.deadPids.map(BigInt)) : 0,
      dead_dir: w.string(t.deadDir),
      dead_cwd: t.deadCwd ? 1 : 0,
      unshare_mnt: t.unshareMnt === undefined ? 0 : 1,
      netns: t.netns === undefined ? 0 : netHeldIndex(plan.netHeld, t.netns),
      nguards: t.guards?.length ?? 0,
      guards_off: w.records('guard', (t.guards ?? []).map((g) => ({ start: g.start, end: g.end }))),
      naios: t.aios?.length ?? 0,
      aios_off: w.records('aio', (t.aios ?? []).map((a) => ({ addr: a.addr, len: a.len, nr_req: a.nrReq }))),
      nruns: t.pages.length,
      runs_off: w.recordsOf('run', t.pages.length, runOf),
      ndrops: cow.drops.length,
      drops_off: w.records('guard', cow.drops),
      nlate_drops: cow.lateDrops.length,
      late_drops_off: w.records('guard', cow.lateDrops),
      pages_path: w.string(t.pagesPath),
      nfds: t.fds.length,
      fds_off: w.records('fd', t.fds.map((f) => ({ fd: f.fd, file: f.file, flags: f.cloexec ? 1 : 0 }))),
      cwd: w.string(t.cwd),
      root: w.string(t.root),
      umask: t.umask,
      personality: t.personality,
      mm_start_code: m.startCode,
      mm_end_code: m.endCode,
      mm_start_data: m.startData,
      mm_end_data: m.endData,
      mm_start_stack: m.startStack,
      mm_start_brk: m.startBrk,
      mm_brk: m.brk,
      mm_arg_start: m.argStart,
      mm_arg_end: m.argEnd,
      mm_env_start: m.envStart,
      mm_env_end: m.envEnd,
      auxv_off: w.u64s(t.auxv),
      auxv_bytes: t.auxv.length * 8,
      exe_path: w.string(t.exe),
      zombie: t.zombie ? t.zombie.status + 1 : 0,
      nlocks: t.locks?.length ?? 0,
      locks_off: t.locks?.length ? w.u64s(t.locks.flatMap((l) => [BigInt(l.fd), BigInt(l.flag), BigInt(l.type), l.start, l.len])) : 0,
      pdeathsig: t.threads[0]?.pdeathsig ?? 0,
      has_loginuid: t.loginuid !== undefined,
      loginuid: t.loginuid ?? 0,
      thp_disabled: !!t.thpDisabled,
      has_coredump_filter: t.coredumpFilter !== undefined,
      coredump_filter: t.coredumpFilter ?? 0,
      membarrier: t.membarrier ?? 0,
      npatches: t.patches?.length ?? 0,
      patches_off: t.patches?.length ? w.u64s(t.patches.flatMap((p) => [p.addr, p.value])) : 0,
      dumpable: t.dumpable,
      sigacts_off: w.records('sigact', sig),
      nrlimits: t.rlimits.length,
      rlimits_off: w.records('rlimit', t.rlimits),
      uid: t.creds.uid,
      gid: t.creds.gid,
      euid: t.creds.euid,
      egid: t.creds.egid,
      suid: t.creds.suid,
      sgid: t.creds.sgid,
      fsuid: t.creds.fsuid,
      fsgid: t.creds.fsgid,
      ngroups: t.creds.groups.length,
      groups_off: w.u64s(t.creds.groups.map(BigInt)),
      itimers_off: w.records('itimer', it),
      child_subreaper: t.childSubreaper,
      nspecial: specials.length,
      special_off: w.records('special', specials.map((s, i) => ({ start: s.start, end: s.end, target: targets[i] }))),
      nsigs: t.pendingSignals?.length ?? 0,
      sigs_off: sigBlock(w, t.pendingSignals, `pid ${t.pid}`),
      ntimers: t.posixTimers?.length ?? 0,
      timers_off: w.records('ptimer', (t.posixTimers ?? []).map((x) => ({
        id: x.id, clock_id: x.clockId, signo: x.signo, notify: x.notify, sival: x.sival, notify_tid: x.notifyTid ?? 0,
        isec: x.isec, insec: x.insec, vsec: x.vsec, vnsec: x.vnsec,
      }))),
      has_caps: t.creds.caps !== undefined,
      cap_inh: t.creds.caps?.inh ?? 0n,
      cap_prm: t.creds.caps?.prm ?? 0n,
      cap_eff: t.creds.caps?.eff ?? 0n,
      cap_bnd: t.creds.caps?.bnd ?? 0n,
      cap_amb: t.creds.caps?.amb ?? 0n,
      secbits: t.creds.caps?.secbits ?? 0,
      no_new_privs: t.creds.caps?.noNewPrivs ?? false,
      has_oom_adj: t.oomScoreAdj !== undefined,
      oom_adj: BigInt(t.oomScoreAdj ?? 0),
    };
  });
  const tasksOff = w.records('task', taskVals);
  const helpers = plan.helpers ?? [];
  const helpersOff = w.records('helper', helpers.map((h) => ({ pid: h.pid, host: h.host, setsid: h.setsid, reaper: h.reaper < 0 ? CONST.NO_PARENT : h.reaper })));
  const held = plan.held ?? [];
  w.record('hdr', { tasks_off: tasksOff, files_off: filesOff, root: plan.root ? w.string(plan.root) : 0, nhelpers: helpers.length, helpers_off: helpersOff, nheld: held.length, held_off: held.length ? w.u64s(held.map(BigInt)) : 0, root_netns: plan.netHeld ? plan.netHeld.root + 1 : 0 }, 0);
  return { w, fdBase };
}

/** The region the blob lives in: code | plan | vDSO parking | shared status | stacks. */
export function regionLayout(codeBytes: number, planBytes: number, plan: RestorePlan, specials: SpecialMapping[]): Omit<RegionLayout, 'start'> {
  const codeSize = pageUp(BigInt(codeBytes));
  const planOff = codeSize;
  const parkOff = planOff + pageUp(BigInt(planBytes));
  const parkSize = pageUp(specials.reduce((s, m) => s + (m.end - m.start), 0n) + PAGE);
  const statusOff = parkOff + parkSize;
  const statusSize = pageUp(CONST.STATUS_TASKS_OFF + BigInt(plan.tasks.length * recordSize('status')));
  const stackOff = statusOff + statusSize;
  const nstacks = Math.max(1, ...plan.tasks.map((t) => t.threads.length));
  const size = stackOff + BigInt(nstacks) * STACK_SIZE;
  return { size, codeSize, planOff, parkOff, statusOff, statusSize, stackOff, stackSize: STACK_SIZE, nstacks };
}

/**
 * The header, written last into the block. `spareTid`: userns.ts spareTid (0: none).
 * `guardRoot`: the root is the launcher's own child (not a sibling: CLONE_PARENT makes it the
 * child of the launcher's parent, whose threads may come and go) and takes SIGKILL as its
 * parent-death signal until its own is set (blob: a launcher killed meanwhile takes the tasks it
 * was making with it).
 */
export function finishPlan(w: PlanWriter, plan: RestorePlan, r: RegionLayout, fdBase: number, timeoutMs: number, spareTid = 0, guardRoot = false): Buffer {
  const buf = w.finish();
  const hdr = new PlanWriter();
  const tasksOff = buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off'));
  const filesOff = buf.readBigUInt64LE(fieldOffset('hdr', 'files_off'));
  const rootOff = buf.readBigUInt64LE(fieldOffset('hdr', 'root'));
  const helpersOff = buf.readBigUInt64LE(fieldOffset('hdr', 'helpers_off'));
  const heldOff = buf.readBigUInt64LE(fieldOffset('hdr', 'held_off'));
  hdr.record('hdr', {
    magic: PLAN_MAGIC,
    version: PLAN_VERSION,
    size: buf.length,
    ntasks: plan.tasks.length,
    tasks_off: tasksOff,
    nfiles: plan.files.length,
    files_off: filesOff,
    fd_base: fdBase,
    region_start: r.start,
    region_end: r.start + r.size,
    status_addr: r.start + r.statusOff,
    status_size: r.statusSize,
    stack_area: r.start + r.stackOff,
    stack_size: r.stackSize,
    park_addr: r.start + r.parkOff,
    timeout_ms: timeoutMs,
    lazy: plan.lazy ? 1 : 0,
    root: rootOff,
    nhelpers: plan.helpers?.length ?? 0,
    helpers_off: helpersOff,
    nheld: plan.held?.length ?? 0,
    held_off: heldOff,
    root_netns: plan.netHeld ? plan.netHeld.root + 1 : 0,
    spare_tid: spareTid,
    guard_root: guardRoot,
  });
  hdr.finish().copy(buf, 0);
  return buf;
}
