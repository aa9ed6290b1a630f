import { closeSync, openSync, readFileSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { readProcText } from '@crtools/procfs';
import { PARASITE_AREA, PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { check, native } from './load-native.js';
import { getGpRegs, getRseqConfig, getSigmask, peekSiginfo, readMemory, setGpRegs, setSigmask, SIGTRAP, waitStop, writeMemory, type RseqConfig, type StoppedThread } from './ptrace.js';
import { decodeGpRegs, encodeGpRegs, restartableRegs, type GpRegs } from './regs.js';
import { PTRACE_EVENT_STOP, type WaitStatus } from './wait-status.js';

/** x86_64 syscall numbers the dumper runs inside its tracees. */
export const NR = {
  close: 3, mmap: 9, munmap: 11, rt_sigaction: 13, getitimer: 36, getpid: 39, sigaltstack: 131,
  personality: 135, prctl: 157, timer_gettime: 224, get_robust_list: 274, pipe2: 293, memfd_create: 319,
  userfaultfd: 323,
} as const;

/** `syscall; int3` — the only code we ever run in a tracee (padded to a word). */
const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);
const SYSCALL_TRAP_BYTES = Buffer.from([0x0f, 0x05, 0xcc, 0x90, 0x90, 0x90, 0x90, 0x90]);

const PROT_RWX = 7;

/**
 * The mask a thread runs our code with: every signal blocked (no handler of the task may run on
 * our stack), but SIGTRAP, which our int3 raises. The kernel, forcing the SIGTRAP of a trap on a
 * thread that blocks it, would unblock it for good and reset its action to the default.
 */
const RUN_SIGMASK = BigInt.asUintN(64, ~(1n << BigInt(SIGTRAP - 1)));
const SIGSEGV = 11;
const SIGPIPE = 13;
/** FINI's: SIGSEGV unblocked too (its run ends with a fault, which a blocked SIGSEGV would turn into a reset of the task's action) */
const FINI_SIGMASK = RUN_SIGMASK & ~(1n << BigInt(SIGSEGV - 1));
/** The kernel's struct sigaction for rt_sigaction: handler, flags, restorer, 64-bit mask. */
const KSIGACTION_SIZE = 32;
const SIG_IGN = 1n;
const MAP_PRIVATE_ANON = 0x22;

/** Whether a struct sigaction (as rt_sigaction gives it) is SIG_IGN's. */
function ignores(action: Buffer): boolean {
  return action.readBigUInt64LE(0) === SIG_IGN;
}

/**
 * The area we map in the tracee (layout from blob/abi.json): the syscall trampoline at its
 * start, the parasite blob, the command arguments, and the blob's stack at the top.
 */
export const AREA_SIZE = PARASITE_AREA.size;
export const AREA_DATA = PARASITE_AREA.data;

let blobCache: Buffer | undefined;

/** The freestanding parasite blob built by scripts/build-blob.sh. */
export function parasiteBlob(): Buffer {
  if (blobCache) return blobCache;
  try {
    blobCache = readFileSync(new URL('../blobs/parasite.bin', import.meta.url));
  } catch (e) {
    throw new CrtoolsError('PARASITE_NO_BLOB', `parasite blob is not built (run the package build): ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  return blobCache;
}

/**
 * A process whose threads are all seized, prepared for running syscalls inside it
 * (CRIU's compel: prepare → infect → call → cure → resume).
 */
export interface Infection {
  pid: number;
  threads: StoppedThread[];
  /** Registers each thread had when seized, restored by cure(). */
  saved: Map<number, Buffer>;
  /** Each thread's signal mask when seized, put back after every run of our code in it. */
  masks: Map<number, bigint>;
  /**
   * The task's SIGTRAP action (the kernel's struct sigaction), read by INIT as it set the blob's
   * handler in its place (or, INIT failing, before its trap, which resets an ignored SIGTRAP to
   * the default): cure() puts it back.
   */
  trapAction?: Buffer;
  /** Whether the blob's SIGTRAP handler is the task's action now (INIT succeeded): see rescue(). */
  trapHandler: boolean;
  /**
   * The signals pending when seized: each thread's own queue's (tid → signals) and the process's
   * shared queue's under 0 (a SIGPIPE of the thread's own the rescue must leave be, a SIGSEGV
   * that FINI's run would take for its fault).
   */
  pending: Map<number, Set<number>>;
  /** The task's SIGSEGV action (read by INIT): FINI's fault must not meet an ignored one. */
  segvAction?: Buffer;
  /**
   * A descriptor the task holds for us between runs of our code (the page pipe's write end), -1
   * none: the rescue closes it. Set back to -1 before the call that closes it.
   */
  heldFd: number;
  /** Each thread's rescue record (rescue()), made at its first run. */
  rescues: Map<number, Buffer>;
  /**
   * A `syscall` instruction already in the task's code (found, never written): the system calls
   * that map and unmap our area run from there and stop at their exit (PTRACE_SYSCALL).
   * Writing one into the task's text instead would leave it a private copy of that page.
   */
  bootstrapAddr: bigint;
  /**
   * struct rseq's rseq_cs of threads in (or armed for) an rseq critical section that does not
   * restart on signals, read before our code ran (a return to user space from our code clears
   * it): the image keeps it, cure() writes it back.
   */
  rseqCs: Map<number, bigint>;
  /** Each thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION) as seized; undefined: none or not told */
  rseq: Map<number, RseqConfig | undefined>;
  /** Our scratch area in the tracee (0n until infect()). */
  area: bigint;
  /** The memfd area mapped MAP_SHARED in both the tracee (sharedAddr) and us (shared). */
  sharedAddr: bigint;
  shared?: Buffer;
}

/** An executable area of a task, to look for a `syscall` instruction in (the vDSO's first: `vdso`). */
export interface CodeArea {
  start: bigint;
  end: bigint;
  vdso?: boolean;
}

/**
 * The task's readable executable mappings, the vdso marked, [vsyscall] left out: from the lines
 * of /proc/PID/maps whose permissions say r-x, without parsing the others (a task of 1,000
 * threads has 2,000 areas of stacks and guards, of which none is executable).
 */
function execAreas(pid: number): CodeArea[] {
  const out: CodeArea[] = [];
  for (const line of readProcText(pid, 'maps').text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0 || line[sp + 1] !== 'r' || line[sp + 3] !== 'x' || line.endsWith(' [vsyscall]')) continue;
    const dash = line.indexOf('-');
    out.push({ start: BigInt(`0x${line.slice(0, dash)}`), end: BigInt(`0x${line.slice(dash + 1, sp)}`), vdso: line.endsWith(' [vdso]') });
  }
  return out;
}

/**
 * The address of a `syscall` instruction (0f 05) in the task's executable mappings, the vdso
 * first: `areas` (readable and executable, the caller's fresh list of the stopped task's
 * mappings) or those of /proc/PID/maps.
 */
function findSyscallInsn(pid: number, areas?: readonly CodeArea[]): bigint {
  const all = areas ?? execAreas(pid);
  const exec = [...all.filter((v) => v.vdso), ...all.filter((v) => !v.vdso)];
  const CHUNK = 1n << 20n;
  for (const v of exec) {
    for (let at = v.start; at < v.end; at += CHUNK) {
      const len = Number(v.end - at < CHUNK ? v.end - at : CHUNK);
      const bytes = Buffer.alloc(len);
      try {
        if (readMemory(pid, at, bytes) !== len) break;
      } catch {
        break; // not readable through process_vm_readv: try the next mapping
      }
      // (a pair across two chunks is simply found in a later place)
      const i = bytes.indexOf(SYSCALL_INSN);
      if (i >= 0) return at + BigInt(i);
    }
  }
  throw new CrtoolsError('NO_EXEC_VMA', `task ${pid} has no syscall instruction in its code to run a syscall from`, { context: { pid } });
}

/**
 * A SIGTRAP already pending cannot be kept through our runs: the thread runs our code with
 * SIGTRAP unblocked (so that the traps keep the task's own action), which lets the pending one
 * be delivered there and taken for a trap of ours, or, queued to the thread, makes the kernel
 * drop the trap's. Refused by name before anything runs, the task left as it was (as CRIU).
 * Returns the signals pending (Infection.pending), read from the same queues.
 */
function refusePendingTrap(pid: number, threads: StoppedThread[]): Map<number, Set<number>> {
  const pending = new Map<number, Set<number>>();
  const read = (tid: number, shared: boolean) => {
    const sigs = new Set(peekSiginfo(tid, shared).map((si) => si.readInt32LE(0)));
    pending.set(shared ? 0 : tid, sigs);
    if (!sigs.has(SIGTRAP)) return;
    throw new CrtoolsError('PENDING_SIGTRAP', `task ${tid}: a SIGTRAP is pending (blocked), which the dumper's own traps would take: not supported`, { exitCode: ExitCode.UNSUPPORTED, context: { pid: tid } });
  };
  read(pid, true);
  for (const t of threads) read(t.tid, false);
  return pending;
}

const RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL = 2;

/**
 * A thread stopped in an rseq critical section (struct rseq's rseq_cs names one and the ip is in
 * [start_ip, start_ip + post_commit_offset)) would be moved to abort_ip by the kernel on its way
 * back to user space, as after a signal; but its first return is from our code, outside the
 * section, and that clears rseq_cs instead, so the section would run on unguarded. Its saved ip
 * becomes abort_ip now (for the images and for a tree resumed alike, as CRIU does). One whose
 * section does not restart on signals keeps its ip; its rseq_cs is kept (`cs`) and put back.
 */
function rseqFixup(pid: number, tid: number, conf: RseqConfig | undefined, regs: Buffer): { regs?: Buffer; cs?: bigint } {
  if (!conf || conf.rseq_abi_pointer === 0n) return {};
  const head = Buffer.alloc(20); // cpu_id_start, cpu_id, rseq_cs, flags
  readMemory(pid, conf.rseq_abi_pointer, head);
  const csPtr = head.readBigUInt64LE(8);
  if (csPtr === 0n) return {};
  const cs = Buffer.alloc(32); // version, flags, start_ip, post_commit_offset, abort_ip
  readMemory(pid, csPtr, cs);
  if (cs.readUInt32LE(0) !== 0) {
    throw new CrtoolsError('RSEQ_VERSION', `thread ${tid}: its rseq critical section descriptor has version ${cs.readUInt32LE(0)}, which is not supported`, { exitCode: ExitCode.UNSUPPORTED, context: { pid: tid } });
  }
  if ((cs.readUInt32LE(4) | head.readUInt32LE(16)) & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) return { cs: csPtr };
  const r = decodeGpRegs(regs);
  const start = cs.readBigUInt64LE(8);
  if (r.ip < start || r.ip >= start + cs.readBigUInt64LE(16)) return {};
  return { regs: encodeGpRegs({ ...r, ip: cs.readBigUInt64LE(24) }) };
}

/** Save every seized thread's registers (compel's prepare). */
export function prepare(pid: number, threads: StoppedThread[], codeAreas?: readonly CodeArea[]): Infection {
  const pending = refusePendingTrap(pid, threads);
  const saved = new Map<number, Buffer>();
  const masks = new Map<number, bigint>();
  const rseqCs = new Map<number, bigint>();
  const rseq = new Map<number, RseqConfig | undefined>();
  for (const t of threads) {
    const regs = getGpRegs(t.tid).raw;
    rseq.set(t.tid, getRseqConfig(t.tid));
    const fix = rseqFixup(pid, t.tid, rseq.get(t.tid), regs);
    if (fix.regs) setGpRegs(t.tid, fix.regs);
    if (fix.cs !== undefined) rseqCs.set(t.tid, fix.cs);
    saved.set(t.tid, fix.regs ?? regs);
    masks.set(t.tid, getSigmask(t.tid));
  }
  return {
    pid, threads, saved, masks, rseqCs, rseq, bootstrapAddr: findSyscallInsn(pid, codeAreas), area: 0n, sharedAddr: 0n,
    trapHandler: false, pending, heldFd: -1, rescues: new Map(),
  };
}

/**
 * Run one system call in thread tid with its instruction pointer at `code`, where
 * `syscall; int3` must already be. Returns the raw result (negative = -errno).
 */
export function remoteSyscallAt(inf: Infection, tid: number, code: bigint, nr: number, args: bigint[] = [], stack?: bigint): bigint {
  const set = syscallRegs(nr, args);
  if (stack !== undefined) set.sp = stack;
  return runUntilTrap(inf, tid, code, set, code + 3n, `syscall ${nr}`);
}

/** The registers of system call nr with its arguments (x86-64 calling convention). */
function syscallRegs(nr: number, args: bigint[]): Partial<GpRegs> {
  const names = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
  const set: Partial<GpRegs> = { ax: BigInt(nr) };
  names.forEach((n, i) => {
    set[n] = args[i] ?? 0n;
  });
  return set;
}

/**
 * How a remote run goes on until it is done: PTRACE_CONT until its int3 (one trap),
 * PTRACE_SINGLESTEP over one `syscall` instruction (one trap, after it), or PTRACE_SYSCALL over
 * one system call, stopping at its entry and at its exit (two traps).
 */
type Run = 'trap' | 'step' | 'syscall';

function resume(tid: number, how: Run): void {
  if (how === 'trap') check(native().cont(tid, 0), 'ptrace(PTRACE_CONT)', tid);
  else if (how === 'step') check(native().singleStep(tid, 0), 'ptrace(PTRACE_SINGLESTEP)', tid);
  else check(native().syscallStep(tid, 0), 'ptrace(PTRACE_SYSCALL)', tid);
}

/**
 * Resume thread tid at `ip` with the seized registers changed by `set` (and orig_ax = -1, so no
 * syscall restart happens) until it traps with its ip at `trapIp`. Returns rax (signed).
 */
export function runUntilTrap(inf: Infection, tid: number, ip: bigint, set: Partial<GpRegs>, trapIp: bigint, what: string): bigint {
  startAt(inf, tid, ip, set);
  return finishAt(inf, tid, trapIp, what);
}

/** Set the thread's registers for a remote run from `ip` and let it go. */
function startAt(inf: Infection, tid: number, ip: bigint, set: Partial<GpRegs>, how: Run = 'trap', mask = RUN_SIGMASK): void {
  const base = inf.saved.get(tid);
  if (!base) throw new CrtoolsError('NOT_SEIZED', `thread ${tid} is not seized`, { context: { pid: tid } });
  const r: GpRegs = { ...decodeGpRegs(base), ...set };
  r.orig_ax = -1n;
  r.ip = ip;
  setGpRegs(tid, encodeGpRegs(r));
  if (how !== 'syscall') {
    if (inf.shared && how === 'trap') rescue(inf, tid);
    setSigmask(tid, mask);
  }
  resume(tid, how);
}

const RESCUE = PARASITE_STRUCTS.rescue;
/** struct sigcontext's order of the general registers (r8 ... flags), the rescue record's */
const SIGCONTEXT_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'di', 'si', 'bp', 'bx', 'dx', 'ax', 'cx', 'sp', 'ip', 'flags'] as const;

/**
 * Arm the blob's SIGTRAP handler for a run of our code in thread tid: the record in the shared
 * area tells it, should the dumper die before this run's trap (the thread, untraced, would die
 * of it), the registers to go back to (as seized, a system call it was in set to run again, as
 * the kernel's own resume would), the seized mask, a descriptor of ours to close and whether a
 * SIGPIPE our vmsplice raised at the thread is to be dropped. Between runs the registers are the
 * task's own already, and a dead dumper's threads run on by themselves.
 */
function rescue(inf: Infection, tid: number): void {
  rescueRecord(inf, tid).copy(inf.shared!, PARASITE_AREA.sharedRescue);
}

/** Thread tid's rescue record as it is now (made at its first run; the held descriptor as of now). */
function rescueRecord(inf: Infection, tid: number): Buffer {
  let rec = inf.rescues.get(tid);
  if (!rec) {
    rec = Buffer.alloc(RESCUE.size);
    const regs = restartableRegs(decodeGpRegs(inf.saved.get(tid)!));
    rec.writeUInt32LE(1, RESCUE.fields.armed.offset);
    rec.writeUInt32LE(inf.pending.get(tid)?.has(SIGPIPE) ? 0 : 1, RESCUE.fields.drop_sigpipe.offset);
    rec.writeBigUInt64LE(inf.masks.get(tid)!, RESCUE.fields.mask.offset);
    SIGCONTEXT_REGS.forEach((n, i) => rec!.writeBigUInt64LE(regs[n], RESCUE.fields.sigregs.offset + 8 * i));
    inf.rescues.set(tid, rec);
  }
  rec.writeInt32LE(inf.heldFd, RESCUE.fields.close_fd.offset);
  return rec;
}

/** A stop on the way to a run's trap (a late interrupt trap, a signal arriving): the signal kept for the detach, the thread let go on. */
function passStop(inf: Infection, tid: number, st: WaitStatus, how: Run): void {
  if (st.event !== PTRACE_EVENT_STOP && st.stopSignal !== SIGTRAP) {
    const t = inf.threads.find((x) => x.tid === tid);
    if (t) t.pendingSignal = st.stopSignal;
  }
  resume(tid, how);
}

/** Wait for a thread started by startAt to reach its trap; put its seized registers back; return ax. */
function finishAt(inf: Infection, tid: number, trapIp: bigint, what: string, how: Run = 'trap'): bigint {
  const base = inf.saved.get(tid)!;
  for (let traps = 0; ; ) {
    const st = waitStop(tid);
    if (st.stopSignal === SIGTRAP && st.event === 0 && ++traps === (how === 'syscall' ? 2 : 1)) break;
    passStop(inf, tid, st, how);
  }
  const after = getGpRegs(tid).regs;
  // put the seized registers and mask back at once: should we die now, the kernel's detach
  // lets the thread run on from where it was (only the area would be left mapped)
  setGpRegs(tid, base);
  if (how !== 'syscall') setSigmask(tid, inf.masks.get(tid)!);
  if (after.ip !== trapIp) {
    throw new CrtoolsError('REMOTE_CALL', `task ${tid}: ${what} stopped at unexpected ip 0x${after.ip.toString(16)}`, { context: { pid: tid } });
  }
  return BigInt.asIntN(64, after.ax);
}

/**
 * Run a system call in the main thread from the task's own `syscall` instruction: nothing is
 * written into the task's code. One single step over it (one stop, SIGTRAP unblocked for it),
 * but where the task ignores SIGTRAP (the step's trap is forced: it would reset the action to
 * the default): PTRACE_SYSCALL, stopping at its entry and its exit.
 */
function bootstrapSyscall(inf: Infection, nr: number, args: bigint[]): bigint {
  const how: Run = trapIgnored(inf) ? 'syscall' : 'step';
  startAt(inf, inf.pid, inf.bootstrapAddr, syscallRegs(nr, args), how);
  return finishAt(inf, inf.pid, inf.bootstrapAddr + 2n, `syscall ${nr}`, how);
}

/**
 * Whether the task's own SIGTRAP action is SIG_IGN: as INIT read it once it ran, else from the
 * main thread's status as seized (not told: taken as ignored).
 */
function trapIgnored(inf: Infection): boolean {
  if (inf.trapAction) return ignores(inf.trapAction);
  const ign = inf.threads.find((t) => t.tid === inf.pid)?.status?.SigIgn;
  return ign === undefined || ((ign >> BigInt(SIGTRAP - 1)) & 1n) === 1n;
}

/**
 * The tracee's mapping of our area: the trampoline, the blob, its arguments and stack
 * (AREA_SIZE), and above them the memfd shared with us (PARASITE_AREA.shared), which the blob's
 * INIT maps over that part: one mmap and one munmap cover both.
 */
const MAPPED_SIZE = BigInt(AREA_SIZE + PARASITE_AREA.shared);

/**
 * Map our area in the tracee, put the syscall trampoline and the blob in it, and set up the
 * shared memfd area through which commands exchange their arguments (compel's infect): the
 * mmap from the task's own `syscall` instruction (bootstrapSyscall), then the blob's INIT (our
 * SIGTRAP handler set, the task's SIGTRAP and SIGSEGV actions read, the memfd made and mapped,
 * its fd closed): at once, or with `lazy` when the first command or call comes (ensureShared;
 * runCommands takes it into its batch).
 */
export function infect(inf: Infection, lazy = false): void {
  const addr = bootstrapSyscall(inf, NR.mmap, [0n, MAPPED_SIZE, BigInt(PROT_RWX), BigInt(MAP_PRIVATE_ANON), -1n, 0n]);
  if (addr < 0n && addr > -4096n) {
    throw new CrtoolsError('REMOTE_MMAP', `task ${inf.pid}: mmap of the parasite area failed (errno ${-addr})`, { context: { pid: inf.pid } });
  }
  inf.area = BigInt.asUintN(64, addr);
  writeMemory(inf.pid, inf.area + BigInt(PARASITE_AREA.trampoline), SYSCALL_TRAP_BYTES);
  writeMemory(inf.pid, inf.area + BigInt(PARASITE_AREA.blob), parasiteBlob());
  if (!lazy) mapSharedArea(inf);
}

/**
 * The shared area, made by INIT now if it has not run yet (an infection with `lazy`: INIT rides
 * in the first batch of commands when that comes first, runCommands).
 */
export function ensureShared(inf: Infection): Buffer {
  if (inf.shared) return inf.shared;
  // (no area, or an INIT that ran and failed, or a cure begun)
  if (inf.area === 0n || inf.trapAction !== undefined) throw new CrtoolsError('NOT_INFECTED', `task ${inf.pid} is not infected`, { context: { pid: inf.pid } });
  mapSharedArea(inf);
  return inf.shared!;
}

/** Whether INIT is still to run (then runCommands can take it into its batch: initCommandArgs, initRan). */
export function initPending(inf: Infection): boolean {
  return inf.area !== 0n && !inf.shared && inf.trapAction === undefined;
}

/**
 * The blob's INIT (its arguments in the area's private data: there is no shared area yet); we
 * map the same memfd through /proc/PID/map_files (the tracee keeps no descriptor of it).
 */
function mapSharedArea(inf: Infection): void {
  const args = initCommandArgs(inf);
  initRan(inf, runInData(inf, 'INIT', args), args);
}

/** INIT's arguments: where the shared area goes, and the main thread's rescue record, which INIT puts there. */
export function initCommandArgs(inf: Infection): Buffer {
  const I = PARASITE_STRUCTS.init_args;
  const args = Buffer.alloc(I.size);
  args.writeBigUInt64LE(inf.area + BigInt(AREA_SIZE), I.fields.addr.offset);
  args.writeBigUInt64LE(BigInt(PARASITE_AREA.shared), I.fields.size.offset);
  rescueRecord(inf, inf.pid).copy(args, I.fields.rescue.offset);
  return args;
}

/** What INIT returned (r) and left in its arguments taken in: the actions read, our view of the shared area mapped. */
export function initRan(inf: Infection, r: bigint, args: Buffer): void {
  const I = PARASITE_STRUCTS.init_args;
  const size = BigInt(PARASITE_AREA.shared);
  const at = inf.area + BigInt(AREA_SIZE);
  // the SIGTRAP action, read before the command's trap (kept for the cure whatever came next)
  inf.trapAction = Buffer.from(args.subarray(I.fields.trap.offset, I.fields.trap.offset + KSIGACTION_SIZE));
  inf.segvAction = Buffer.from(args.subarray(I.fields.segv.offset, I.fields.segv.offset + KSIGACTION_SIZE));
  // (an INIT that fails has put the task's action back itself)
  inf.trapHandler = r === at;
  if (r < 0n && r > -4096n) throw new CrtoolsError('REMOTE_MEMFD', `task ${inf.pid}: making the shared area failed in the tracee (errno ${-r})`, { context: { pid: inf.pid } });
  if (r !== at) throw new CrtoolsError('REMOTE_MMAP', `task ${inf.pid}: the shared area was mapped at 0x${r.toString(16)}, not 0x${at.toString(16)}`, { context: { pid: inf.pid } });
  inf.sharedAddr = at;
  const ours = openSync(`/proc/${inf.pid}/map_files/${at.toString(16)}-${(at + size).toString(16)}`, 'r+');
  try {
    inf.shared = check(native().mapShared(ours, Number(size)), 'mmap', inf.pid);
  } finally {
    closeSync(ours);
  }
}

/** Offset of the int3 after `call parasite_main` in the blob's entry (blob/entry.S). */
const BLOB_TRAP_OFFSET = 10n;

/** Start blob command `cmd` in thread tid, its arguments at `argsAt`, on the blob's stack. */
function startBlob(inf: Infection, tid: number, cmd: number, argsAt: bigint, mask = RUN_SIGMASK): void {
  startAt(inf, tid, inf.area + BigInt(PARASITE_AREA.blob), { di: BigInt(cmd), si: argsAt, sp: inf.area + BigInt(PARASITE_AREA.stackTop) }, 'trap', mask);
}

/** Wait for a blob command started by startBlob to reach its trap; its result. */
function finishBlob(inf: Infection, tid: number, what: string): bigint {
  return finishAt(inf, tid, inf.area + BigInt(PARASITE_AREA.blob) + BLOB_TRAP_OFFSET, what);
}

/**
 * Run blob command `cmd` in the main thread with `buf` as its arguments in the area's private
 * data (before the shared area exists: INIT, or a batch that holds it), read back once run.
 */
function runInData(inf: Infection, cmd: keyof typeof PARASITE_CMD, buf: Buffer): bigint {
  const data = inf.area + BigInt(AREA_DATA);
  writeMemory(inf.pid, data, buf);
  startBlob(inf, inf.pid, PARASITE_CMD[cmd], data);
  const r = finishBlob(inf, inf.pid, `parasite command ${cmd}`);
  readMemory(inf.pid, data, buf);
  return r;
}

/** The largest first batch (INIT and commands, in the area's private data, which the blob's stack shares: half of it). */
export const FIRST_BATCH_BYTES = (PARASITE_AREA.stackTop - PARASITE_AREA.data) >> 1;

/**
 * A BATCH whose first call is INIT (initPending), run in the main thread from the area's private
 * data (there is no shared area before INIT): `batch` is written there and read back once run.
 * One stop for INIT and the commands after it.
 */
export function runFirstBatch(inf: Infection, batch: Buffer): void {
  if (batch.length > FIRST_BATCH_BYTES) throw new RangeError(`parasite arguments of ${batch.length} bytes exceed the data area`);
  runInData(inf, 'BATCH', batch);
}

/**
 * Run one parasite blob command in thread tid (trap mode): `args` is copied to the data area,
 * the blob runs the command and traps; the data area is read back into `args`.
 * Returns the command's result (negative = -errno).
 */
export function runBlobCommand(inf: Infection, tid: number, cmd: number, args: Buffer): bigint {
  startBlobCommand(inf, tid, cmd, args);
  return finishBlobCommand(inf, tid, cmd, args);
}

/**
 * The first half of runBlobCommand: the command runs in the tracee while the caller does other
 * work; finishBlobCommand (mandatory, even on the caller's error paths) waits for it.
 */
export function startBlobCommand(inf: Infection, tid: number, cmd: number, args: Buffer): void {
  const shared = ensureShared(inf);
  if (args.length > PARASITE_AREA.sharedRescue) throw new RangeError(`parasite arguments of ${args.length} bytes exceed the shared area`);
  // arguments and results move through the shared memfd mapping: no ptrace or vm copies
  args.copy(shared, 0);
  startBlob(inf, tid, cmd, inf.sharedAddr);
}

/** Wait for a command started by startBlobCommand; its results are copied back into `args`. */
export function finishBlobCommand(inf: Infection, tid: number, cmd: number, args: Buffer): bigint {
  const r = finishBlob(inf, tid, `parasite command ${cmd}`);
  inf.shared!.copy(args, 0, 0, args.length);
  return r;
}

/**
 * Whether a command started by startBlobCommand has ended (thread tid stopped at its trap, or
 * gone: finishBlobCommand then says how), without waiting. A stop on the way is taken as
 * finishBlobCommand takes it. For a caller that works with the command while it runs (the page
 * pipe the tracee fills as we empty it) and must not wait for what will not come.
 */
export function blobCommandStopped(inf: Infection, tid: number): boolean {
  for (;;) {
    const p = check(native().peekStop(tid), 'waitid', tid);
    if (p.state !== 1) return p.state === 2;
    if (p.status === SIGTRAP) return true;
    passStop(inf, tid, waitStop(tid), 'trap');
  }
}

/** Run a syscall in a thread of an infected process (compel's call, one syscall at a time). */
export function call(inf: Infection, tid: number, nr: number, args: bigint[] = []): bigint {
  ensureShared(inf);
  return trampolineCall(inf, tid, nr, args);
}

/** A system call from the area's trampoline, on the blob's stack (the shared area not required: the cure's). */
function trampolineCall(inf: Infection, tid: number, nr: number, args: bigint[]): bigint {
  return remoteSyscallAt(inf, tid, inf.area + BigInt(PARASITE_AREA.trampoline), nr, args, inf.area + BigInt(PARASITE_AREA.stackTop));
}

/** Address of data byte `off` of the scratch area. */
export function dataAddr(inf: Infection, off: number): bigint {
  return inf.area + BigInt(AREA_DATA + off);
}

export function readData(inf: Infection, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  readMemory(inf.pid, dataAddr(inf, off), b);
  return b;
}

/**
 * The task's SIGTRAP action put back and the area unmapped by the blob's FINI, in one run of the
 * main thread (one stop, where a call of rt_sigaction and a munmap from the task's own `syscall`
 * take three): true once the area is gone, the thread stopped by the fault of its return into
 * it (the signal dropped: never delivered, the registers and mask put back); false when FINI
 * returned, having failed (the cure's other way then). Only where the fault can be told and
 * meets no ignored action: see cure().
 */
function fini(inf: Infection): boolean {
  const F = PARASITE_STRUCTS.fini_args;
  const args = Buffer.alloc(F.size);
  args.writeBigUInt64LE(inf.area, F.fields.addr.offset);
  args.writeBigUInt64LE(MAPPED_SIZE, F.fields.size.offset);
  args.copy(inf.shared!, 0);
  const tid = inf.pid;
  startBlob(inf, tid, PARASITE_CMD.FINI, inf.sharedAddr, FINI_SIGMASK);
  let gone = false;
  for (;;) {
    const st = waitStop(tid);
    if (st.event === 0 && st.stopSignal === SIGTRAP) break;
    // (a SIGSEGV sent to it meanwhile is kept for the detach)
    if (st.event === 0 && st.stopSignal === SIGSEGV && fetchFault(inf, tid)) {
      gone = true;
      break;
    }
    passStop(inf, tid, st, 'trap');
  }
  setGpRegs(tid, inf.saved.get(tid)!);
  setSigmask(tid, inf.masks.get(tid)!);
  return gone;
}

const SEGV_MAPERR = 1;

/**
 * Whether the SIGSEGV thread tid stops with is the fault of its return into our area unmapped:
 * at the address of the instruction it was to run, in the area, which nothing maps
 * (PTRACE_GETSIGINFO: si_code SEGV_MAPERR, si_addr = ip), not a signal sent to it (si_code <= 0).
 */
function fetchFault(inf: Infection, tid: number): boolean {
  const si = Buffer.alloc(128);
  if (typeof native().getSiginfo(tid, si) !== 'number') return false;
  const ip = getGpRegs(tid).regs.ip;
  // struct siginfo: si_signo, si_errno, si_code (int each), padding, then si_addr at 16
  return si.readInt32LE(0) === SIGSEGV && si.readInt32LE(8) === SEGV_MAPERR && si.readBigUInt64LE(16) === ip && ip >= inf.area && ip < inf.area + MAPPED_SIZE;
}

/**
 * Unmap the scratch area and put every thread's registers back exactly as seized (compel's cure).
 * Best effort: runs on every path and never throws; returns the first problem met.
 */
export function cure(inf: Infection): Error | undefined {
  let first: Error | undefined;
  // the critical sections our runs cleared (prepare): armed again, as they were
  for (const [tid, cs] of inf.rseqCs) {
    try {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(cs);
      writeMemory(inf.pid, inf.rseq.get(tid)!.rseq_abi_pointer + 8n, b);
    } catch (e) {
      first ??= e as Error;
    }
  }
  // FINI where its fault cannot be mistaken or meet an ignored action (no SIGSEGV pending, the
  // task's SIGSEGV not ignored); else, or when it fails, the calls below
  const own = inf.pending;
  if (inf.area !== 0n && inf.shared && inf.trapHandler && inf.segvAction && !ignores(inf.segvAction) && !own.get(0)?.has(SIGSEGV) && !own.get(inf.pid)?.has(SIGSEGV)) {
    try {
      if (fini(inf)) {
        inf.area = 0n;
        inf.trapHandler = false;
      }
    } catch (e) {
      first ??= e as Error;
    }
  }
  // (the shared area goes with the area's munmap; our own mapping of it stays until GC'd)
  inf.sharedAddr = 0n;
  inf.shared = undefined;
  if (inf.area !== 0n && inf.trapAction && (inf.trapHandler || ignores(inf.trapAction))) {
    // the task's own action in place of the blob's handler (or, after an INIT that failed, an
    // ignored one its trap reset to the default): from the trampoline (one stop), but an ignored
    // one, which a trap would reset again, from the task's own `syscall` (no trap)
    try {
      const act = inf.area + BigInt(AREA_DATA);
      writeMemory(inf.pid, act, inf.trapAction);
      const args = [BigInt(SIGTRAP), act, 0n, 8n];
      const r = ignores(inf.trapAction) ? bootstrapSyscall(inf, NR.rt_sigaction, args) : trampolineCall(inf, inf.pid, NR.rt_sigaction, args);
      if (r < 0n) first ??= new Error(`putting back the SIGTRAP action failed (errno ${-r})`);
      else inf.trapHandler = false;
    } catch (e) {
      first ??= e as Error;
    }
  }
  if (inf.area !== 0n) {
    try {
      const r = bootstrapSyscall(inf, NR.munmap, [inf.area, MAPPED_SIZE]);
      if (r < 0n) first = new Error(`munmap of the parasite area failed (errno ${-r})`);
      inf.area = 0n;
    } catch (e) {
      first = e as Error;
    }
  }
  for (const [tid, raw] of inf.saved) {
    try {
      setGpRegs(tid, raw);
    } catch (e) {
      first ??= e as Error;
    }
  }
  return first;
}
