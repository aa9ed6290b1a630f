import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { isNativeSysError } from '@crtools/common';
import { readStatus } from '@crtools/procfs';
import { KCMP_EPOLL_TFD, KCMP_FILE } from '@crtools/sys';
import type { KerndatPart, Lsm } from '../types.js';
import { native } from '../load-native.js';
import { NR, closeFd, raw, forkFailed, forkProbe } from '../sys.js';
import { canAccess, readTrim } from '../procfs-lite.js';

/** A pid nobody uses: well above ns_last_pid, below pid_max, and absent from /proc. */
function freePid(): number {
  const last = Number(readTrim('/proc/sys/kernel/ns_last_pid'));
  const max = Number(readTrim('/proc/sys/kernel/pid_max'));
  const salt = Math.floor(Math.random() * 100000);
  for (let i = 0; i < 64; i++) {
    const cand = 300 + ((last + 5000 + salt + i * 7919) % Math.max(1, max - 400));
    if (!existsSync(`/proc/${cand}`)) return cand;
  }
  return last + 5000;
}

/** clone3() with set_tid: fork a child at a chosen pid (as CRIU's restore does). */
export function probeClone3SetTid(): KerndatPart {
  for (let attempt = 0; attempt < 3; attempt++) {
    const want = freePid();
    const r = native().clone3SetTid(want);
    if (isNativeSysError(r) && r.errno === 17 /* EEXIST: someone took that pid meanwhile */) continue;
    return { has_clone3_set_tid: r === want };
  }
  return { has_clone3_set_tid: false };
}

/**
 * pidfd_open on ourselves, then pidfd_getfd of one of our own fds through it; process_mrelease
 * on our own pidfd (we are not dying: EINVAL where the call exists, ENOSYS before 5.15).
 */
export function probePidfd(): KerndatPart {
  const p = raw(NR.pidfd_open, process.pid, 0);
  if (p.ret === -1n) return { has_pidfd_open: false, has_pidfd_getfd: false, has_process_mrelease: false };
  try {
    const g = raw(NR.pidfd_getfd, p.ret, p.ret, 0);
    if (g.ret !== -1n) closeFd(g.ret);
    const m = raw(NR.process_mrelease, p.ret, 0);
    return { has_pidfd_open: true, has_pidfd_getfd: g.ret !== -1n, has_process_mrelease: m.errno !== 38 /* ENOSYS */ };
  } finally {
    closeFd(p.ret);
  }
}

export function probeNsLastPid(): KerndatPart {
  return { has_ns_last_pid: canAccess('/proc/sys/kernel/ns_last_pid', constants.W_OK) };
}

/** kcmp(2), and its KCMP_EPOLL_TFD mode (is this fd registered in that epoll?). */
export function probeKcmp(): KerndatPart {
  const pid = process.pid;
  const ep = raw(NR.epoll_create1, 0o2000000);
  const ev = raw(NR.eventfd2, 0, 0o2000000);
  try {
    if (ep.ret === -1n || ev.ret === -1n) return { has_kcmp: raw(NR.kcmp, pid, pid, KCMP_FILE, 0, 0).errno !== 38 };
    const same = raw(NR.kcmp, pid, pid, KCMP_FILE, ev.ret, ev.ret);
    const event = Buffer.alloc(12);
    event.writeUInt32LE(1, 0); // EPOLLIN
    raw(NR.epoll_ctl, ep.ret, 1 /* EPOLL_CTL_ADD */, ev.ret, event);
    // kcmp(pid, pid, KCMP_EPOLL_TFD, fd, &{efd, tfd, toff}): 0 when fd is that epoll's target
    const slot = Buffer.alloc(12);
    slot.writeUInt32LE(Number(ep.ret), 0);
    slot.writeUInt32LE(Number(ev.ret), 4);
    slot.writeUInt32LE(0, 8);
    const t = raw(NR.kcmp, pid, pid, KCMP_EPOLL_TFD, ev.ret, slot);
    return { has_kcmp: same.errno === 0 && same.ret === 0n, has_kcmp_epoll_tfd: t.errno === 0 && t.ret === 0n };
  } finally {
    if (ep.ret !== -1n) closeFd(ep.ret);
    if (ev.ret !== -1n) closeFd(ev.ret);
  }
}

/** prctl abilities CRIU's restore relies on (PR_GET_TID_ADDRESS, PR_SET_MM_MAP). */
export function probePrctl(): KerndatPart {
  const tid = Buffer.alloc(8);
  const a = raw(NR.prctl, 40 /* PR_GET_TID_ADDRESS */, tid, 0, 0, 0);
  const size = Buffer.alloc(4);
  const b = raw(NR.prctl, 35 /* PR_SET_MM */, 15 /* PR_SET_MM_MAP_SIZE */, size, 0, 0);
  const t = raw(NR.prctl, 77 /* PR_TIMER_CREATE_RESTORE_IDS */, 2 /* _GET */, 0, 0, 0);
  const m = raw(NR.membarrier, 1 << 9 /* MEMBARRIER_CMD_GET_REGISTRATIONS */, 0, 0);
  return {
    has_prctl_tid_address: a.errno === 0,
    has_prctl_mm_map: b.errno === 0 && size.readUInt32LE(0) > 0,
    has_timer_cr_ids: t.errno === 0,
    has_membarrier_get_registrations: m.errno === 0,
  };
}

/** close_range(2): closing an empty range above every fd succeeds. */
export function probeCloseRange(): KerndatPart {
  return { has_close_range: raw(NR.close_range, 0xfffffffe, 0xfffffffe, 0).errno === 0 };
}

/**
 * rseq(2) exists (a bogus registration gets EINVAL, not ENOSYS), and what a
 * tracer sees of a task with ptrace: SEIZE, GETSIGMASK, PEEKSIGINFO,
 * O_SUSPEND_SECCOMP, SECCOMP_GET_FILTER, GET_RSEQ_CONFIGURATION, the xstate
 * regset and a hardware breakpoint. The tracee is forked and reaped natively.
 */
export function probePtrace(): KerndatPart {
  const rs = raw(NR.rseq, 0, 0, 0, 0);
  const p = native().ptraceProbe({ seccomp: true, timeoutMs: 3000 });
  if (isNativeSysError(p)) throw forkFailed(p.errno);
  const part: KerndatPart = {
    has_rseq: rs.errno !== 38,
    has_ptrace_seize: p.seize === 0 && p.interrupt === 0 && p.interruptStop === true,
    has_ptrace_getsigmask: p.getsigmask === 0,
    has_ptrace_peeksiginfo: p.peeksiginfo === 0,
    has_ptrace_suspend_seccomp: p.suspendSeccomp === 0,
    has_ptrace_seccomp_get_filter: p.seccompGetFilter === 0 && (p.seccompFilterLen ?? 0) > 0,
    has_ptrace_get_rseq_conf: p.getRseqConf === 0,
    has_breakpoints: p.breakpointHit === true,
  };
  if (p.rseqConf) part.libc_rseq_conf = p.rseqConf;
  // the xstate regset size is kept for the cpu probe, which fills in the rest of `xsave`
  part.xsave = { xcr0: 0n, size: 0, max_size: 0, features: [], components: [], ptrace_size: p.xstateSize ?? 0 };
  return part;
}

/** rt_sigqueueinfo to oneself with a positive si_code (done in a forked child). */
export function probeSigqueueinfo(): KerndatPart {
  const st = forkProbe('sigqueueinfo', [], 3000);
  return { has_sigqueueinfo: st.exited && st.code === 0 };
}

/** clone(CLONE_NEWPID | CLONE_PARENT) works (done two forks away, everything reaped). */
export function probeCloneParentNewpid(): KerndatPart {
  const st = forkProbe('clone_parent_newpid', [], 3000);
  return { has_clone_parent_newpid: st.exited && st.code === 0 };
}

/** loginuid: readable, and (in a child) can be unset and restored. */
export function probeLoginuid(): KerndatPart {
  if (!existsSync('/proc/self/loginuid')) return { luid: 'LUID_NONE' };
  const st = forkProbe('loginuid', [], 3000);
  return { luid: st.exited && st.code === 0 ? 'LUID_FULL' : 'LUID_READ' };
}

/** Facts of /proc about tasks: timers, stat's extension fields, NSpid. */
export function probeProcTask(): KerndatPart {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  return {
    has_posix_timers_proc: canAccess('/proc/self/timers', constants.R_OK),
    // fields after the comm: 'state' is field 3; exit_code is field 52 (counted here, not parsed:
    // a kernel without them is what this asks)
    has_proc_stat_ext: fields.length + 2 >= 52,
    has_nspid: readStatus(process.pid).NSpid !== undefined,
  };
}

/** Namespaces this kernel has (from /proc/self/ns), time namespaces included. */
export function probeNamespaces(): KerndatPart {
  const names = readdirSync('/proc/self/ns');
  const ns: Record<string, boolean> = {};
  for (const n of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts']) ns[n] = names.includes(n);
  return { namespaces: ns, has_timens: ns.time === true && names.includes('time_for_children') };
}

/** Capabilities: the last one the kernel knows, the effective set, CAP_CHECKPOINT_RESTORE (40). */
export function probeCaps(): KerndatPart {
  const eff = readStatus(process.pid).CapEff ?? 0n;
  const last = Number(readTrim('/proc/sys/kernel/cap_last_cap'));
  return {
    last_cap: last,
    cap_eff: eff,
    // what CRIU demands to run at all: CAP_CHECKPOINT_RESTORE (40) or CAP_SYS_ADMIN (21)
    has_cap_checkpoint_restore: (last >= 40 && ((eff >> 40n) & 1n) === 1n) || ((eff >> 21n) & 1n) === 1n,
  };
}

/** The active LSMs and the one CRIU would save labels for. */
export function probeLsm(): KerndatPart {
  let list: string[] = [];
  try {
    list = readTrim('/sys/kernel/security/lsm').split(',').filter(Boolean);
  } catch {
    /* securityfs not mounted */
  }
  let lsm: Lsm = 'NO_LSM';
  if (list.includes('apparmor') && existsSync('/sys/kernel/security/apparmor')) lsm = 'APPARMOR';
  else if (list.includes('selinux') && existsSync('/sys/fs/selinux/enforce')) lsm = 'SELINUX';
  const part: KerndatPart = { lsm, lsm_list: list };
  if (lsm === 'APPARMOR') part.apparmor_ns_dumping_enabled = existsSync('/sys/kernel/security/apparmor/.ns_stacked');
  return part;
}

export function probeCgroup(): KerndatPart {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const v1 = !v2 && existsSync('/sys/fs/cgroup');
  const hybrid = !v2 && existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
  return { cgroup_version: hybrid ? 'hybrid' : v2 ? 'v2' : v1 ? 'v1' : 'v2' };
}

export function probeNrOpen(): KerndatPart {
  return { sysctl_nr_open: Number(readTrim('/proc/sys/fs/nr_open')) };
}
