/* The parasite blob: freestanding code run inside a frozen tracee, one command per entry.
 * Only raw system calls, no libc, no data relocations (everything is reached RIP-relative). */
#include "parasite-abi.h"

#define NR_rt_sigaction 13
#define NR_getitimer 36
#define NR_sigaltstack 131
#define NR_personality 135
#define NR_prctl 157
#define NR_brk 12
#define NR_timer_gettime 224
#define NR_timer_getoverrun 225
#define NR_get_robust_list 274
#define NR_sched_getscheduler 145
#define NR_getpriority 140
#define NR_sched_getparam 143
#define NR_membarrier 324
#define NR_vmsplice 278
#define NR_close 3
#define NR_mmap 9
#define NR_ftruncate 77
#define NR_memfd_create 319
#define NR_getpid 39
#define NR_gettid 186
#define NR_tgkill 234
#define NR_rt_sigtimedwait 128
#define NR_munmap 11

#define SIGTRAP 5
#define SIGSEGV 11
#define SIGPIPE 13
#define EPIPE 32
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000

static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define sys(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static long prctl_get(long opt, long arg) { return sys6(NR_prctl, opt, arg, 0, 0, 0, 0); }

/* rt_sigaction(sig, NULL, &old) for 1..64 but SIGKILL and SIGSTOP, in that order. */
static long cmd_sigactions(struct parasite_sigactions_args *a) {
	unsigned n = 0;
	for (int s = 1; s <= 64; s++) {
		if (s == 9 || s == 19) continue;
		long r = sys6(NR_rt_sigaction, s, 0, (long)&a->sa[n], 8, 0, 0);
		if (r < 0) return r;
		n++;
	}
	a->nr = n;
	return 0;
}

static long cmd_itimers(struct parasite_itimers_args *a) {
	for (int w = 0; w < 3; w++) {
		long r = sys(NR_getitimer, w, &a->t[w], 0);
		if (r < 0) return r;
	}
	return 0;
}

static long cmd_misc(struct parasite_misc_args *a) {
	a->securebits = prctl_get(27 /* PR_GET_SECUREBITS */, 0);
	a->dumpable = prctl_get(3 /* PR_GET_DUMPABLE */, 0);
	long r = prctl_get(2 /* PR_GET_PDEATHSIG */, (long)&a->pdeathsig);
	if (r < 0) return r;
	r = prctl_get(37 /* PR_GET_CHILD_SUBREAPER */, (long)&a->child_subreaper);
	if (r < 0) return r;
	a->no_new_privs = prctl_get(39 /* PR_GET_NO_NEW_PRIVS */, 0);
	a->timerslack = prctl_get(30 /* PR_GET_TIMERSLACK */, 0);
	a->personality = sys(NR_personality, 0xffffffffUL, 0, 0);
	a->brk = (uint64_t)sys(NR_brk, 0, 0, 0);
	a->thp_disabled = prctl_get(42 /* PR_GET_THP_DISABLE */, 0);
	/* the process's membarrier registrations (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3;
	 * a negative errno before) */
	a->membarrier = sys(NR_membarrier, 1 << 9, 0, 0);
	return 0;
}

static long cmd_thread(struct parasite_thread_args *a) {
	long r = prctl_get(40 /* PR_GET_TID_ADDRESS */, (long)&a->clear_tid_addr);
	if (r < 0) return r;
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;
	r = sys(NR_sigaltstack, 0, &ss, 0);
	if (r < 0) return r;
	a->ss_sp = ss.sp;
	a->ss_flags = ss.flags;
	a->ss_size = ss.size;
	/* the policy with SCHED_RESET_ON_FORK, which /proc/PID/stat's policy field leaves out */
	a->sched_policy = sys(NR_sched_getscheduler, 0, 0, 0);
	/* the thread's nice value (the system call answers 20 - nice), its real-time priority
	   (0 under a policy that is not real-time) and its name: what /proc's per-thread stat
	   would tell, without a read of it per thread */
	r = sys(NR_getpriority, 0 /* PRIO_PROCESS: with 0, the calling thread */, 0, 0);
	if (r < 0) return r;
	a->nice = (int32_t)(20 - r);
	r = sys(NR_sched_getparam, 0, (long)&a->rt_prio, 0);
	if (r < 0) return r;
	r = prctl_get(16 /* PR_GET_NAME */, (long)a->comm);
	if (r < 0) return r;
	return sys(NR_get_robust_list, 0, &a->robust_head, &a->robust_len);
}

static long cmd_posix_timers(struct parasite_posix_timers_args *a) {
	for (unsigned i = 0; i < a->nr && i < 256; i++) {
		struct parasite_posix_timer *t = &a->t[i];
		long r = sys(NR_timer_gettime, t->id, &t->isec, 0);
		if (r < 0) return r;
		r = sys(NR_timer_getoverrun, t->id, 0, 0);
		if (r < 0) return r;
		t->overrun = (int32_t)r;
	}
	return 0;
}

/* vmsplice the given ranges (their pages are referenced, not copied) into the dumper's pipe;
 * when they are more than the pipe holds, each vmsplice waits for the room the dumper makes
 * as it empties the pipe meanwhile. Returns bytes queued. */
static long cmd_vmsplice(struct parasite_vmsplice_args *a) {
	long total = 0;
	unsigned i = 0;
	/* the read end of the pipe, which the dumper has taken for its own (it is not ours to keep) */
	if (a->close_fd >= 0) {
		sys(NR_close, a->close_fd, 0, 0);
		a->close_fd = -1;
	}
	while (i < a->nr && i < 512) {
		long n = sys6(NR_vmsplice, a->fd, (long)&a->iov[i], a->nr - i, 0, 0, 0);
		if (n < 0) return n;
		if (n == 0) return -5; /* -EIO: nothing moved */
		total += n;
		/* skip what went in, shorten a partly queued range */
		while (n > 0 && i < a->nr) {
			if ((uint64_t)n >= a->iov[i].len) {
				n -= (long)a->iov[i].len;
				i++;
			} else {
				a->iov[i].base += (uint64_t)n;
				a->iov[i].len -= (uint64_t)n;
				n = 0;
			}
		}
	}
	return total;
}

/* The task's own SIGTRAP action, as INIT found it (the rescue puts it back). */
static struct parasite_sigaction task_trap;

/* Symbols of entry.S, reached RIP-relative. */
extern char parasite_entry[] __attribute__((visibility("hidden")));
extern char parasite_trap_ip[] __attribute__((visibility("hidden")));
extern char parasite_sigreturn[] __attribute__((visibility("hidden")));

/* The kernel's x86-64 signal frame, as far as the handler touches it (struct ucontext with its
 * struct sigcontext; the fpstate is left as the trap saved it: our code never touches it). */
struct ksigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15, di, si, bp, bx, dx, ax, cx, sp, ip, flags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
};
struct kucontext {
	uint64_t flags, link, ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	struct ksigcontext mc;
	uint64_t sigmask;
};
_Static_assert(__builtin_offsetof(struct kucontext, mc) == 40, "ucontext layout");
_Static_assert(__builtin_offsetof(struct kucontext, sigmask) == 296, "ucontext layout");

/* SIGTRAP, which only reaches the task when its dumper is gone (while traced, our traps stop
 * the thread and the dumper discards the signal). The dumper died while this thread ran one of
 * our commands or trampoline calls: the thread goes back to the registers and mask it had when
 * seized, through the signal frame, instead of dying of the trap. Anything else (a trap of the
 * task's own, once a dead dumper left us installed) goes to the task's own action. */
static void on_trap(int sig, void *info, struct kucontext *uc) {
	(void)sig;
	(void)info;
	/* (addresses as integers: the area around the blob is not an object the compiler knows) */
	uint64_t area = (uint64_t)parasite_entry - PARASITE_AREA_BLOB;
	struct parasite_rescue *r = (struct parasite_rescue *)(area + PARASITE_AREA_SIZE + PARASITE_AREA_SHARED_RESCUE);
	uint64_t ip = uc->mc.ip;
	int in_blob = ip == (uint64_t)parasite_trap_ip;
	int ours = r->armed && (in_blob || ip == area + PARASITE_AREA_TRAMPOLINE + 3);
	sys6(NR_rt_sigaction, SIGTRAP, (long)&task_trap, 0, 8, 0, 0);
	if (!ours) {
		/* blocked until the handler returns, then the task's action takes it */
		sys(NR_tgkill, sys(NR_getpid, 0, 0, 0), sys(NR_gettid, 0, 0, 0), SIGTRAP);
		return;
	}
	if (r->close_fd >= 0) sys(NR_close, r->close_fd, 0, 0);
	/* a vmsplice into the dumper's pipe that lost its reader raised SIGPIPE at this thread
	 * (blocked while our code ran): not the task's to receive */
	if (r->drop_sigpipe && in_blob && (long)uc->mc.ax == -EPIPE) {
		uint64_t set = 1ULL << (SIGPIPE - 1);
		struct { long sec, nsec; } now = { 0, 0 };
		sys6(NR_rt_sigtimedwait, (long)&set, 0, (long)&now, 8, 0, 0);
	}
	uint64_t *g = &uc->mc.r8;
	for (int i = 0; i < 18; i++) g[i] = r->sigregs[i];
	uc->sigmask = r->mask;
}

/* The start of an infection, in one run: the task's SIGSEGV action read (for FINI), the SIGTRAP
 * handler above set in place of the task's action, which is read in the same call (and put back
 * by FINI or the cure; our traps, meeting our handler, reset nothing), then the memfd shared
 * with the dumper made and mapped over the top of the area (MAP_FIXED: the cure's one munmap of
 * the area takes it too). Its descriptor is closed here: the dumper maps the same file through
 * /proc/PID/map_files. Returns the mapping's address or -errno. */
static long cmd_init(struct parasite_init_args *a) {
	static const char name[] = "crtools-parasite";
	struct parasite_sigaction ours;
	ours.handler = (uint64_t)on_trap;
	ours.flags = SA_SIGINFO | SA_RESTORER;
	ours.restorer = (uint64_t)parasite_sigreturn;
	ours.mask = ~0ULL; /* nothing else runs on our stack meanwhile */
	/* (SIGSEGV's too: FINI ends with a fault, which must neither meet an ignored action nor reset it) */
	long r = sys6(NR_rt_sigaction, SIGSEGV, 0, (long)&a->segv, 8, 0, 0);
	if (r < 0) return r;
	r = sys6(NR_rt_sigaction, SIGTRAP, (long)&ours, (long)&a->trap, 8, 0, 0);
	if (r < 0) return r;
	task_trap.handler = a->trap.handler;
	task_trap.flags = a->trap.flags;
	task_trap.restorer = a->trap.restorer;
	task_trap.mask = a->trap.mask;
	long fd = sys(NR_memfd_create, name, 1 /* MFD_CLOEXEC */, 0);
	r = fd < 0 ? fd : sys(NR_ftruncate, fd, a->size, 0);
	if (r >= 0) r = sys6(NR_mmap, (long)a->addr, (long)a->size, 3 /* PROT_READ|PROT_WRITE */, 0x11 /* MAP_SHARED|MAP_FIXED */, fd, 0);
	if (fd >= 0) sys(NR_close, fd, 0, 0);
	/* failed: no handler of ours left without its record (the dumper cures what is mapped) */
	if (r < 0) {
		sys6(NR_rt_sigaction, SIGTRAP, (long)&a->trap, 0, 8, 0, 0);
		return r;
	}
	/* this run's rescue record, in place in the new shared area: the commands that ride in
	   INIT's batch are covered as every later run is */
	uint64_t *to = (uint64_t *)(a->addr + PARASITE_AREA_SHARED_RESCUE);
	const uint64_t *from = (const uint64_t *)&a->rescue;
	for (unsigned i = 0; i < sizeof(a->rescue) / 8; i++) to[i] = from[i];
	return r;
}

/* The end of an infection, in one run: the task's SIGTRAP action back, then the whole area
 * unmapped, this code with it. The return from munmap faults at the next instruction (SIGSEGV,
 * SIGSEGV unblocked for this run): the thread stops for the dumper, which drops the signal and
 * puts the registers back. Returns, to the usual trap, only when something failed. */
static long cmd_fini(struct parasite_fini_args *a) {
	uint64_t addr = a->addr, size = a->size; /* (a is in the area) */
	long r = sys6(NR_rt_sigaction, SIGTRAP, (long)&task_trap, 0, 8, 0, 0);
	if (r < 0) return r;
	return sys(NR_munmap, addr, size, 0);
}

static long dispatch(long cmd, void *args) {
	switch (cmd) {
	case PARASITE_CMD_SIGACTIONS: return cmd_sigactions(args);
	case PARASITE_CMD_ITIMERS: return cmd_itimers(args);
	case PARASITE_CMD_MISC: return cmd_misc(args);
	case PARASITE_CMD_THREAD: return cmd_thread(args);
	case PARASITE_CMD_POSIX_TIMERS: return cmd_posix_timers(args);
	case PARASITE_CMD_VMSPLICE: return cmd_vmsplice(args);
	case PARASITE_CMD_INIT: return cmd_init(args);
	case PARASITE_CMD_FINI: return cmd_fini(args);
	}
	return -22; /* -EINVAL */
}

/* Several commands in one run (one stop of the task instead of one each): each call's arguments
 * at its offset in the same area, its result beside it. A batch holds no batch. */
static long cmd_batch(struct parasite_batch_args *a) {
	for (unsigned i = 0; i < a->nr && i < 8; i++) {
		struct parasite_batch_call *c = &a->call[i];
		if (c->off < sizeof(*a) || c->off > PARASITE_AREA_SHARED_RESCUE - 8 || c->off % 8)
			c->ret = -22;
		else
			c->ret = dispatch(c->cmd, (char *)a + c->off);
	}
	return 0;
}

long parasite_main(long cmd, void *args) {
	if (cmd == PARASITE_CMD_BATCH) return cmd_batch(args);
	return dispatch(cmd, args);
}
