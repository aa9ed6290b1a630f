/*
 * crtools restorer blob: threads and the final jump. The other threads are cloned at their
 * tids, everyone waits for "go", installs its seccomp filters, takes its credentials, queues
 * its pending signals, enters seccomp strict mode if it had it, and rt_sigreturns into the
 * recorded registers and xsave state.
 */
#include "blob.h"

/* ---- the final jump: an rt_sigframe carrying the recorded registers and xsave state ---- */

struct ksigcontext {
	u64 r8, r9, r10, r11, r12, r13, r14, r15, di, si, bp, bx, dx, ax, cx, sp, ip, flags;
	u16 cs, gs, fs, ss;
	u64 err, trapno, oldmask, cr2, fpstate, reserved1[8];
};

struct kucontext {
	u64 uc_flags, uc_link;
	u64 ss_sp;
	u32 ss_flags, ss_pad;
	u64 ss_size;
	struct ksigcontext mc;
	u64 uc_sigmask;
};

static void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *cc, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*cc), "=d"(*d) : "a"(leaf), "c"(sub));
}

static u64 xgetbv0(void)
{
	u32 lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((u64)hi << 32) | lo;
}

static void put_comp(struct ctx *c, u8 *fp, u64 mask, u64 *bv, u32 bit, u64 off, u64 bytes)
{
	u32 a, b, cc, d;
	if (!(mask & (1ULL << bit)) || !off || !(*bv & (1ULL << bit)))
		return;
	cpuid(0xd, bit, &a, &b, &cc, &d);
	memcpy(fp + b, AT(c, off), bytes < a ? bytes : a);
}

static __attribute__((noreturn)) void jump_to_task(struct ctx *c, struct plan_thread *th, u8 *stack_lo)
{
	u8 *base = (u8 *)(((u64)stack_lo + 4096 + 63) & ~63ULL);
	struct kucontext *uc = (struct kucontext *)(base + 8); /* base = rt_sigframe: pretcode, uc, info */
	u8 *fp = base + 2048; /* 64-aligned fpstate */
	u64 xcr0 = xgetbv0();
	u64 mask = xcr0 & ((1ULL << 0) | (1ULL << 1) | (1ULL << 2) | (1ULL << 5) | (1ULL << 6) | (1ULL << 7) | (1ULL << 9));
	u64 bv = th->xstate_bv & mask, size = 576, bit;
	u32 a, b, cc, d;

	memset(base, 0, 2048 + 576);
	for (bit = 2; bit < 10; bit++) {
		if (!(mask & (1ULL << bit)))
			continue;
		cpuid(0xd, (u32)bit, &a, &b, &cc, &d);
		if (b + a > size)
			size = b + a;
	}
	memset(fp + 576, 0, size - 576 + 4);
	memcpy(fp, AT(c, th->fxsave_off), 512);
	put_comp(c, fp, mask, &bv, 2, th->ymmh_off, 256);
	put_comp(c, fp, mask, &bv, 5, th->opmask_off, 64);
	put_comp(c, fp, mask, &bv, 6, th->zmm_upper_off, 512);
	put_comp(c, fp, mask, &bv, 7, th->hi16_zmm_off, 1024);
	if (th->has_pkru && (mask & (1ULL << 9))) {
		u32 pk = (u32)th->pkru;
		cpuid(0xd, 9, &a, &b, &cc, &d);
		memcpy(fp + b, &pk, 4);
		bv |= 1ULL << 9;
	} else
		bv &= ~(1ULL << 9);
	/* software-reserved bytes of the legacy area describe the extended frame */
	*(u32 *)(fp + 464) = FP_XSTATE_MAGIC1;
	*(u32 *)(fp + 468) = (u32)size + 4;
	*(u64 *)(fp + 472) = mask;
	*(u32 *)(fp + 480) = (u32)size;
	*(u64 *)(fp + 512) = bv;
	*(u32 *)(fp + size) = FP_XSTATE_MAGIC2;

	uc->uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	uc->ss_sp = th->sas_sp;
	uc->ss_flags = (u32)th->sas_flags;
	uc->ss_size = th->sas_size;
	uc->mc.r8 = th->r8;
	uc->mc.r9 = th->r9;
	uc->mc.r10 = th->r10;
	uc->mc.r11 = th->r11;
	uc->mc.r12 = th->r12;
	uc->mc.r13 = th->r13;
	uc->mc.r14 = th->r14;
	uc->mc.r15 = th->r15;
	uc->mc.di = th->di;
	uc->mc.si = th->si;
	uc->mc.bp = th->bp;
	uc->mc.bx = th->bx;
	uc->mc.dx = th->dx;
	uc->mc.ax = th->ax;
	uc->mc.cx = th->cx;
	uc->mc.sp = th->sp;
	uc->mc.ip = th->ip;
	uc->mc.flags = th->flags;
	uc->mc.cs = (u16)th->cs;
	uc->mc.ss = (u16)th->ss;
	uc->mc.fpstate = (u64)fp;
	uc->uc_sigmask = th->blk_sigset;
	blob_sigreturn(uc);
}

#define SIGINFO_SIZE 128

static void queue_signals(struct ctx *c, u64 id, u64 n, u64 off, int thread)
{
	u8 *si = AT(c, off);
	u64 i;

	for (i = 0; i < n; i++, si += SIGINFO_SIZE) {
		int signo = *(int *)si;
		if (thread)
			chk(c, S4(NR_rt_tgsigqueueinfo, c->t->pid, id, signo, si), signo);
		else
			chk(c, S3(NR_rt_sigqueueinfo, id, signo, si), signo);
	}
}

struct sock_fprog {
	u16 len;
	u16 pad[3];
	u64 filter;
};

/*
 * The thread's seccomp filters, oldest first, with their recorded flags (TSYNC: the process's
 * other threads, which then have none of their own in the image, get them too). This runs after
 * "go": the launcher has seized every thread of the task with PTRACE_O_SUSPEND_SECCOMP, so no
 * filter acts on what the blob still does (nor on the injected munmap) until the task is
 * detached. And before the credentials: without no_new_privs installing a filter needs
 * CAP_SYS_ADMIN, which the restorer has and the task may not.
 */
static void install_filters(struct ctx *c, struct plan_thread *th)
{
	struct plan_seccomp *f = AT(c, th->seccomp_off);
	u64 i;

	if (th->seccomp_mode != 2)
		return;
	set_step(c, STEP_SECCOMP);
	for (i = 0; i < th->nseccomp; i++) {
		struct sock_fprog prog = { (u16)f[i].len, { 0, 0, 0 }, (u64)AT(c, f[i].data) };
		long r = S3(NR_seccomp, SECCOMP_SET_MODE_FILTER, f[i].flags, &prog);
		/* TSYNC reports a thread it could not synchronize as a positive tid */
		if (r > 0)
			fail(c, ESRCH, (u64)r);
		chk(c, r, i);
	}
}

/* Wait until the launcher opens gate `w` (1); any other value is an abort: the task exits. */
static void wait_gate(struct ctx *c, volatile u32 *w)
{
	int r = wait_change(c, w, 0);
	if (r)
		fail(c, (u64)-r, 0);
	if (*w != 1) /* abort requested by the launcher */
		for (;;)
			S1(NR_exit_group, 71);
}

/*
 * The last wait, everything of the thread's own done but the sigreturn: the launcher, which
 * let the threads run here untraced by syscall, counts them in, stops them all, and then
 * follows each through its sigreturn by syscall stops (a few each, instead of two for each
 * system call made since "go").
 */
static void park(struct ctx *c)
{
	__atomic_add_fetch(c->parked, 1, __ATOMIC_SEQ_CST);
	S3(NR_futex, c->parked, FUTEX_WAKE, 1);
	wait_gate(c, c->last);
}

void thread_final(struct ctx *c, u64 ti)
{
	struct plan_thread *th = (struct plan_thread *)AT(c, c->t->threads_off) + ti;
	u8 *stack_lo = (u8 *)(c->h->stack_area + ti * c->h->stack_size);

	install_filters(c, th);
	/* credentials belong to each thread (raw syscalls change only the caller's): every thread
	   takes the task's, as glibc keeps them equal across threads */
	restore_creds(c);
	set_step(c, STEP_TLS);
	if (th->comm)
		S5(NR_prctl, PR_SET_NAME, STR(c, th->comm), 0, 0, 0);
	chk(c, S2(NR_arch_prctl, ARCH_SET_FS, th->fs_base), th->tid);
	if (th->gs_base)
		chk(c, S2(NR_arch_prctl, ARCH_SET_GS, th->gs_base), th->tid);
	S1(NR_set_tid_address, th->clear_tid);
	if (th->robust_len)
		chk(c, S2(NR_set_robust_list, th->robust_head, th->robust_len), th->tid);
	set_step(c, STEP_RSEQ);
	if (th->rseq_ptr) {
		chk(c, S4(NR_rseq, th->rseq_ptr, th->rseq_len, 0, th->rseq_sig), th->tid);
		/* the return from rseq() cleared the critical section the thread was in (the ip was
		   the restorer's): a thread stopped in one that does not restart on signals finds it
		   set again (struct rseq's rseq_cs, at offset 8) */
		if (th->rseq_cs)
			*(volatile u64 *)(th->rseq_ptr + 8) = th->rseq_cs;
	}
	/* pending signals go back on the queues while everything is still blocked here; the
	 * sigreturn below installs the recorded mask, so blocked ones stay pending */
	if (ti == 0)
		arm_timers(c);
	set_step(c, STEP_SIGNALS);
	queue_signals(c, th->tid, th->nsigs, th->sigs_off, 1);
	if (ti == 0)
		queue_signals(c, c->t->pid, c->t->nsigs, c->t->sigs_off, 0);
	if (th->seccomp_mode == 1) {
		/* strict mode allows read, write, _exit and sigreturn only: the last thing before the
		   jump (and, under the launcher's PTRACE_O_SUSPEND_SECCOMP, still no constraint) */
		set_step(c, STEP_SECCOMP);
		chk(c, S5(NR_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0), 0);
	}
	set_step(c, STEP_SIGRETURN);
	if (ti == 0)
		__atomic_store_n(&c->st->state, ST_RESUMED, __ATOMIC_SEQ_CST);
	park(c);
	jump_to_task(c, th, stack_lo);
}

void wait_go(struct ctx *c)
{
	wait_gate(c, c->go);
}

static void thread_main(void *p)
{
	struct targ *a = p;
	struct ctx *c = a->c;
	u64 ti = a->ti;
	__atomic_add_fetch(&c->ready, 1, __ATOMIC_SEQ_CST);
	S3(NR_futex, &c->ready, FUTEX_WAKE, 1);
	wait_go(c);
	thread_final(c, ti);
}

void restore_threads(struct ctx *c)
{
	struct plan_thread *th = AT(c, c->t->threads_off);
	static const u64 flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	struct targ args[MAX_THREADS];
	u64 i, n = c->t->nthreads;

	set_step(c, STEP_THREADS);
	if (n > MAX_THREADS)
		fail(c, EINVAL, n);
	for (i = 1; i < n; i++) {
		struct clone_args ca;
		u64 tid = th[i].tid;
		memset(&ca, 0, sizeof(ca));
		ca.flags = flags;
		ca.stack = c->h->stack_area + i * c->h->stack_size;
		ca.stack_size = c->h->stack_size;
		ca.set_tid = (u64)&tid;
		ca.set_tid_size = 1;
		args[i].c = c;
		args[i].ti = i;
		chk(c, blob_clone_thread(&ca, sizeof(ca), thread_main, &args[i]), tid);
	}
	for (;;) {
		u32 r = __atomic_load_n(&c->ready, __ATOMIC_SEQ_CST);
		if (r >= n - 1)
			break;
		if (wait_change(c, &c->ready, r))
			fail(c, ETIMEDOUT, r);
	}
}
