/*
 * crtools restorer blob: freestanding code that turns a forked process into a
 * checkpointed task. It is mapped, together with the plan block (layout.json),
 * at an address free in both the launcher's and every task's recorded layout.
 * No libc, no globals, no absolute relocations: everything is reached through
 * the plan pointer handed to _start.
 *
 * This file is the task's sequence (restorer_root, restorer_task); the steps live in
 * files.c, memory.c, task.c and threads.c, what they share in blob.h and syscalls.h, and
 * the entry point and the two assembly helpers in entry.S (linked first: _start at 0).
 */
#include "blob.h"

HIDDEN void *memset(void *d, int c, unsigned long n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

HIDDEN void *memcpy(void *d, const void *s, unsigned long n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

#define PHASE_FORKED 1 /* this task and the sharers of its table below it have forked */
#define PHASE_TABLE 2  /* the descriptor table this task holds is complete */
#define PHASE_JOINED 4 /* this task is in its session and process group */

static volatile struct plan_status *status_of(struct ctx *c, u64 idx)
{
	return (volatile struct plan_status *)(c->h->status_addr + STATUS_TASKS_OFF + idx * PLAN_STATUS_SIZE);
}

static void wait_phase(struct ctx *c, u64 idx, u32 bit)
{
	volatile u32 *w = (volatile u32 *)&status_of(c, idx)->phase;
	u32 v;
	while (!((v = __atomic_load_n(w, __ATOMIC_SEQ_CST)) & bit))
		if (wait_change(c, w, v))
			fail(c, ETIMEDOUT, status_of(c, idx)->pid);
}

static void set_phase(struct ctx *c, u32 bit)
{
	volatile u32 *w = (volatile u32 *)&c->st->phase;
	__atomic_or_fetch(w, bit, __ATOMIC_SEQ_CST);
	S3(NR_futex, w, FUTEX_WAKE, 0x7fffffff);
}

static void shared_table_forked(struct ctx *c)
{
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	u64 i;
	for (i = 0; i < c->h->ntasks; i++)
		if (tasks[i].parent == c->idx && tasks[i].share_files)
			wait_phase(c, i, PHASE_FORKED);
	set_phase(c, PHASE_FORKED);
}

HIDDEN __attribute__((noreturn)) void restorer_task(u8 *plan, u64 idx);

/* Task i forked at its pid (its exit signal SIGCHLD): 0 in the child. A child that shared its
   parent's descriptor table shares it again. */
static long fork_task(struct ctx *c, u64 i)
{
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	struct clone_args ca;
	u64 pid = tasks[i].pid;
	memset(&ca, 0, sizeof(ca));
	ca.flags = tasks[i].share_files ? CLONE_FILES : 0;
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (u64)&pid;
	ca.set_tid_size = 1;
	return chk(c, S2(NR_clone3, &ca, sizeof(ca)), pid);
}

/* Until the process group pgid exists (its leader, a task or a helper, has made it). */
static void wait_group(struct ctx *c, u64 pgid)
{
	u64 spins;
	for (spins = 0; (u64)S1(NR_getpgid, pgid) != pgid; spins++) {
		if (spins > 10000000)
			fail(c, ETIMEDOUT, pgid);
		S0(NR_sched_yield);
	}
}

/*
 * A helper process (plan_helper h): makes its session (setsid) or its process group (setpgid),
 * forks the tasks it stands for, and exits once they, and every task of its group, have joined
 * their session and group (or the restore is called off). It reports through its host's status.
 */
static __attribute__((noreturn)) void helper_main(struct ctx *c, u64 h)
{
	struct plan_helper *hp = (struct plan_helper *)AT(c, c->h->helpers_off) + h;
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	u64 i, me = (u64)S0(NR_getpid);
	if (hp->setsid)
		chk(c, S0(NR_setsid), hp->pid);
	else if (hp->pid)
		chk(c, S2(NR_setpgid, 0, 0), hp->pid);
	for (i = 0; i < c->h->ntasks; i++) {
		if (tasks[i].via_helper == h + 1 && fork_task(c, i) == 0)
			restorer_task(c->plan, i);
	}
	for (i = 0; i < c->h->ntasks; i++) {
		volatile u32 *w = (volatile u32 *)&status_of(c, i)->phase;
		u32 v;
		if (tasks[i].via_helper != h + 1 && tasks[i].pgid != me)
			continue;
		while (!((v = __atomic_load_n(w, __ATOMIC_SEQ_CST)) & PHASE_JOINED)) {
			struct timespec64 ts = { 0, 100 * 1000 * 1000 };
			if (__atomic_load_n(c->go, __ATOMIC_SEQ_CST) == 2)
				for (;;)
					S1(NR_exit_group, 73);
			S4(NR_futex, w, FUTEX_WAIT, v, &ts);
		}
	}
	for (;;)
		S1(NR_exit_group, 0);
}

/* The helpers this task hosts, forked (no exit signal: reaped with __WALL by end_helpers); their
   pids in hp[], at most MAX_HELPERS. */
#define MAX_HELPERS 64
static u64 make_helpers(struct ctx *c, u64 *hp)
{
	struct plan_helper *h = AT(c, c->h->helpers_off);
	u64 i, n = 0;
	for (i = 0; i < c->h->nhelpers; i++) {
		struct clone_args ca;
		u64 pid = h[i].pid;
		long r;
		if (h[i].host != c->idx)
			continue;
		if (n == MAX_HELPERS)
			fail(c, E2BIG, i);
		memset(&ca, 0, sizeof(ca));
		if (pid) {
			ca.set_tid = (u64)&pid;
			ca.set_tid_size = 1;
		}
		r = chk(c, S2(NR_clone3, &ca, sizeof(ca)), pid);
		if (r == 0)
			helper_main(c, i);
		hp[n++] = (u64)r;
	}
	return n;
}

/* Each helper this task forked has exited (its tasks have joined their session and group): reaped. */
static void end_helpers(struct ctx *c, const u64 *hp, u64 n)
{
	u64 i;
	for (i = 0; i < n; i++)
		chk(c, S5(NR_waitid, 1 /* P_PID */, hp[i], 0, 4 /* WEXITED */ | 0x40000000 /* __WALL */, 0), hp[i]);
}

/* Whether this task is where some helper's tasks go once it exits. */
static int reaps(struct ctx *c)
{
	struct plan_helper *h = AT(c, c->h->helpers_off);
	u64 i;
	for (i = 0; i < c->h->nhelpers; i++)
		if (h[i].reaper == c->idx)
			return 1;
	return 0;
}

/*
 * The children this task forks itself (not those a helper forks), zombies first: one may host a
 * helper whose tasks start from this address space as restore_mm left it, before anything is
 * laid for a child. early: only those born in the session this task was born in (forked before
 * its setsid; nothing laid for them), else the others. Returns the pages laid.
 */
static u64 fork_children(struct ctx *c, int early)
{
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	u64 i, n = c->h->ntasks, laid = 0;
	for (i = 0; i < 2 * n; i++) {
		u64 ci = i % n, born = tasks[ci].born_sid ? tasks[ci].born_sid : tasks[ci].sid;
		if (tasks[ci].parent != c->idx || tasks[ci].via_helper || !tasks[ci].zombie != (i >= n))
			continue;
		if ((c->t->born_sid && born == c->t->born_sid) != early)
			continue;
		if (!tasks[ci].zombie && !early) {
			set_step(c, STEP_COW);
			laid += lay_for_child(c, ci);
			set_step(c, STEP_FORK);
		}
		if (fork_task(c, ci) == 0)
			restorer_task(c->plan, ci);
	}
	return laid;
}

/* The task joins its process group (once its leader, a task or a helper, has made it). */
static void join_group(struct ctx *c)
{
	if ((u64)S1(NR_getpgid, 0) != c->t->pgid) {
		if (c->t->pgid != c->t->pid)
			wait_group(c, c->t->pgid);
		chk(c, S2(NR_setpgid, 0, c->t->pgid == c->t->pid ? 0 : c->t->pgid), c->t->pgid);
	}
	set_phase(c, PHASE_JOINED);
}

/*
 * The processes gone whose /proc files the tree holds: each made again with its pid (no exit
 * signal), only waiting to be killed, while the tree's files are opened (which closes every
 * other descriptor: they are known by their pids, which are this task's children's).
 */
static void make_dead_pids(struct ctx *c)
{
	u64 *pids = AT(c, c->t->dead_off), i;
	for (i = 0; i < c->t->ndead; i++) {
		struct clone_args ca;
		u64 pid = pids[i];
		long r;
		memset(&ca, 0, sizeof(ca));
		ca.set_tid = (u64)&pid;
		ca.set_tid_size = 1;
		r = chk(c, S2(NR_clone3, &ca, sizeof(ca)), pid);
		if (r == 0)
			for (;;)
				S0(NR_pause);
	}
}

/* ... then killed and reaped: the files name a process gone again. */
static void end_dead_pids(struct ctx *c)
{
	u64 *pids = AT(c, c->t->dead_off), i;
	for (i = 0; i < c->t->ndead; i++) {
		chk(c, S2(NR_kill, pids[i], SIGKILL), pids[i]);
		chk(c, S5(NR_waitid, 1 /* P_PID */, pids[i], 0, 4 /* WEXITED */ | 0x40000000 /* __WALL */, 0), pids[i]);
	}
}

HIDDEN __attribute__((noreturn)) void restorer_task(u8 *plan, u64 idx)
{
	struct ctx cx;
	struct ctx *c = &cx;
	struct plan_task *tasks;
	u64 all = ~0ULL, laid = 0;
	u64 helpers[MAX_HELPERS], nhelpers;

	c->plan = plan;
	c->h = (struct plan_hdr *)plan;
	tasks = AT(c, c->h->tasks_off);
	c->t = &tasks[idx];
	c->idx = idx;
	c->st = (volatile struct plan_status *)(c->h->status_addr + STATUS_TASKS_OFF + idx * PLAN_STATUS_SIZE);
	c->go = (volatile u32 *)(c->h->status_addr + STATUS_GO_OFF);
	c->parked = (volatile u32 *)(c->h->status_addr + STATUS_PARKED_OFF);
	c->last = (volatile u32 *)(c->h->status_addr + STATUS_LAST_OFF);
	c->ready = 0;
	c->st->pid = c->t->pid;
	set_step(c, STEP_START);
	/* until its own parent-death signal is set, a task dies with the process that made it: a
	   launcher killed meanwhile (SIGKILL, the OOM killer) takes the half-made tree with it, the
	   root first and each task after its parent, instead of leaving it to wait for the blob's
	   time limit holding the pids */
	if (guarded(c))
		S5(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	__atomic_store_n(&c->st->state, ST_STARTED, __ATOMIC_SEQ_CST);

	/* nothing of the target may run before its state is complete */
	S4(NR_rt_sigprocmask, 2, &all, 0, 8);

	/* a task living in another network namespace of the tree than its parent's (one it made
	   or entered) enters it first thing, before its sockets or children are made: the
	   launcher made it, the root holds it for the tasks (netns: the held descriptor + 1) */
	if (c->t->netns) {
		set_step(c, STEP_NETNS);
		chk(c, S2(NR_setns, held_base(c) + c->t->netns - 1, 0x40000000 /* CLONE_NEWNET */), 0);
	}

	/* a task that made a mount namespace below its parent's (unshare) makes it again the same
	   way, a copy of its parent's, before anything it maps, opens or forks is looked up; the
	   launcher then shapes it into the dumped one from outside (its status word: made, then
	   shaped or abort) */
	if (c->t->unshare_mnt) {
		volatile u32 *gate = (volatile u32 *)&c->st->mnt_gate;
		set_step(c, STEP_MNTNS);
		chk(c, S1(NR_unshare, 0x00020000 /* CLONE_NEWNS */), 0);
		__atomic_store_n(gate, MNT_GATE_MADE, __ATOMIC_SEQ_CST);
		chk(c, wait_change(c, gate, MNT_GATE_MADE), 1);
		if (*gate != MNT_GATE_SHAPED)
			for (;;)
				S1(NR_exit_group, 71);
	}

	if (c->t->parent == NO_PARENT) {
		/* the root's namespaces get their state from the launcher first (its mounts: the files
		   are opened in them; the ns word: 1 done, 2 abort) */
		volatile u32 *ns = (volatile u32 *)(c->h->status_addr + STATUS_NS_OFF);
		set_step(c, STEP_FILES);
		chk(c, wait_change(c, ns, 0), 0);
		if (*ns == NS_GATE_CGNS) {
			/* the launcher has put the root at the root of its cgroup namespace in every
			   hierarchy: the namespace is made there (unshare pins it to the caller's cgroups),
			   then the launcher moves the root into its own cgroups below */
			chk(c, S1(NR_unshare, 0x02000000 /* CLONE_NEWCGROUP */), 0);
			__atomic_store_n(ns, NS_GATE_CGNS_MADE, __ATOMIC_SEQ_CST);
			chk(c, wait_change(c, ns, NS_GATE_CGNS_MADE), 0);
		}
		if (*ns != 1)
			for (;;)
				S1(NR_exit_group, 71);
		make_dead_pids(c);
		open_file_table(c);
		/* the /proc directory of a process gone that is tasks' working directory: entered
		   while that process lives (chdir checks it), kept by every task forked after */
		if (c->t->dead_dir)
			chk(c, S1(NR_chdir, STR(c, c->t->dead_dir)), 0);
		end_dead_pids(c);
	}
	set_step(c, STEP_SESSION);
	if (c->t->sid == c->t->pid && !c->t->born_sid) {
		chk(c, S0(NR_setsid), 0);
		restore_ctty(c);
	}
	/* the reaper of a helper's tasks is a subreaper before it forks (the orphans go to it, as
	   they had); any other sets its flag late (task.c), once the helpers below are gone */
	if (c->t->child_subreaper && !c->t->zombie && reaps(c))
		chk(c, S5(NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);

	if (c->t->zombie) {
		/* a zombie: it only has to end as it did (its parent has not waited for it), once the
		   helpers it hosts (its session's, its group's) are done */
		u64 status = c->t->zombie - 1, sig = status & 0x7f;
		struct plan_thread *th = AT(c, c->t->threads_off);
		nhelpers = make_helpers(c, helpers);
		join_group(c);
		end_helpers(c, helpers, nhelpers);
		if (th->comm)
			S5(NR_prctl, PR_SET_NAME, STR(c, th->comm), 0, 0, 0);
		__atomic_store_n(&c->st->state, ST_READY, __ATOMIC_SEQ_CST);
		if (sig) {
			u64 dfl[4] = { 0, 0, 0, 0 }, set = 1ULL << (sig - 1);
			S4(NR_rt_sigaction, sig, dfl, 0, 8);
			S4(NR_rt_sigprocmask, 1 /* SIG_UNBLOCK */, &set, 0, 8);
			S2(NR_kill, c->t->pid, sig);
		}
		for (;;)
			S1(NR_exit_group, (status >> 8) & 0xff);
	}

	/* the address space before the children: they inherit it, and keep the areas they take over
	   from this task with the pages they share with it (copy-on-write, as a fork left them) */
	restore_mm(c);

	/* born in a session above before it made its own: the children of that session first */
	if (c->t->born_sid) {
		set_step(c, STEP_FORK);
		fork_children(c, 1);
		set_step(c, STEP_SESSION);
		if (c->t->sid == c->t->pid) {
			chk(c, S0(NR_setsid), 0);
			restore_ctty(c);
		}
	}

	/* the helpers start from this address space too (the tasks they fork do) */
	set_step(c, STEP_SESSION);
	nhelpers = make_helpers(c, helpers);

	set_step(c, STEP_FORK);
	laid = fork_children(c, 0);
	/* the process group once every child is forked (as CRIU: a group's leader may be one of
	   them, or a helper of this task's); then this task's helpers are done */
	set_step(c, STEP_SESSION);
	join_group(c);
	end_helpers(c, helpers, nhelpers);
	if (laid) {
		set_step(c, STEP_COW);
		refill_after_fork(c);
	}
	/* One descriptor table for several tasks (CLONE_FILES, parent and children): its first
	   holder makes its descriptors once every sharer below has forked its own children (who
	   take a copy of the files at fd_base), and the sharers go on only once it has. */
	shared_table_forked(c);

	set_step(c, STEP_FDS);
	if (c->t->share_files)
		wait_phase(c, c->t->parent, PHASE_TABLE);
	else
		restore_fds(c);
	restore_locks(c);
	set_phase(c, PHASE_TABLE);

	restore_mm_late(c);
	restore_mm_struct(c);
	restore_task_misc(c);
	restore_threads(c);
	task_formed(c);
	restore_pidfds(c);
	restore_late_files(c);
	restore_fown(c);
	restore_ctty_pgrp(c);
	create_timers(c);
	restore_sched_oom(c);
	lazy_register(c);
	/* the working directory and root last, once nothing is opened by a path of the restorer's
	   (the exe, /proc/self files): both paths as the restorer sees them, the working directory
	   first (it may lie outside the root, as after a chroot() without a chdir()), then the
	   root, which leaves it be */
	set_step(c, STEP_FS);
	if (c->t->cwd && !c->t->dead_cwd)
		chk(c, S1(NR_chdir, STR(c, c->t->cwd)), 0);
	if (c->t->root && !(STR(c, c->t->root)[0] == '/' && STR(c, c->t->root)[1] == 0))
		chk(c, S1(NR_chroot, STR(c, c->t->root)), 1);
	S1(NR_umask, c->t->umask);

	set_step(c, STEP_READY);
	__atomic_store_n(&c->st->state, ST_READY, __ATOMIC_SEQ_CST);
	set_step(c, STEP_GO);
	wait_go(c);
	lazy_close(c);
	thread_final(c, 0);
	for (;;)
		S1(NR_exit_group, 72);
}

/* Entry from the launcher: drop the launcher thread's rseq registration first (its area is
 * about to be unmapped), then become the root task. */
HIDDEN __attribute__((noreturn)) void restorer_root(u8 *plan, u64 idx, u64 rseq_ptr, u64 rseq_len)
{
	if (rseq_ptr) {
		long r = S4(NR_rseq, rseq_ptr, rseq_len, 1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053);
		if (r == -EINVAL && rseq_len != 32)
			S4(NR_rseq, rseq_ptr, 32, 1, 0x53053053);
	}
	restorer_task(plan, idx);
}
