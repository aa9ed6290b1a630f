/*
 * Private to the restorer blob: what its files share. The task's context (the plan pointer
 * handed to _start and where this task reports), the failure path, the two assembly helpers
 * of entry.S, and the steps each file provides. Everything is hidden: the blob is linked
 * position-independent with no dynamic symbols and no absolute relocations.
 */
#ifndef CRTOOLS_BLOB_H
#define CRTOOLS_BLOB_H

#include "plan-layout.h"
#include "syscalls.h"

/* freestanding: the compiler may call these for struct copies and zeroing (restorer.c) */
HIDDEN void *memset(void *d, int c, unsigned long n);
HIDDEN void *memcpy(void *d, const void *s, unsigned long n);

struct clone_args {
	u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

long blob_clone_thread(struct clone_args *args, unsigned long size, void (*fn)(void *), void *arg) HIDDEN;
void blob_sigreturn(void *uc) HIDDEN __attribute__((noreturn));

struct ctx {
	u8 *plan;
	struct plan_hdr *h;
	struct plan_task *t;
	u64 idx;
	volatile struct plan_status *st;
	volatile u32 *go;
	/* the tree's threads parked before their sigreturn (each adds one), and the launcher's
	   word that lets them go on (1) once it traces them (2: abort) */
	volatile u32 *parked;
	volatile u32 *last;
	volatile u32 ready;
};

struct targ {
	struct ctx *c;
	u64 ti;
};

#define AT(c, off) ((void *)((c)->plan + (off)))
#define STR(c, off) ((const char *)((c)->plan + (off)))

static inline void set_step(struct ctx *c, u64 step)
{
	c->st->step = step;
}

static inline __attribute__((noreturn)) void fail(struct ctx *c, u64 err, u64 detail)
{
	c->st->err = err;
	c->st->detail = detail;
	c->st->code = c->st->step;
	__atomic_store_n(&c->st->state, ST_FAILED, __ATOMIC_SEQ_CST);
	for (;;)
		S1(NR_exit_group, 70);
}

/* a negative kernel return is -errno */
static inline long chk(struct ctx *c, long r, u64 detail)
{
	if (r < 0 && r > -4096)
		fail(c, (u64)-r, detail);
	return r;
}

struct timespec64 {
	s64 sec, nsec;
};

/* wait until *w != v, for at most the plan's timeout; never spins */
static inline int wait_change(struct ctx *c, volatile u32 *w, u32 v)
{
	u64 waited = 0;
	while (__atomic_load_n(w, __ATOMIC_SEQ_CST) == v) {
		struct timespec64 ts = { 0, 100 * 1000 * 1000 };
		long r = S4(NR_futex, w, FUTEX_WAIT, v, &ts);
		if (r == -ETIMEDOUT) {
			waited += 100;
			if (waited >= c->h->timeout_ms)
				return -ETIMEDOUT;
		} else if (r < 0 && r != -EAGAIN && r != -EINTR)
			return (int)r;
	}
	return 0;
}

/* Whether this task takes SIGKILL as its parent-death signal until its own is set (restore_creds):
   the root when it is the launcher's own child (hdr guard_root), every other task but one a
   helper forks (the helper exits on purpose before the tasks are let go). */
static inline int guarded(struct ctx *c)
{
	return c->idx == 0 ? c->h->guard_root != 0 : !c->t->via_helper;
}

/* the first of the launcher's descriptors the root holds for the tasks (plan hdr held_off), above
   the file table (fd_base + n) and the descriptors kept aside (fd_base + nfiles + n) */
static inline u64 held_base(struct ctx *c)
{
	return c->h->fd_base + 2 * c->h->nfiles;
}

/* a socket of a network namespace below the root's (its file's netns: the held descriptor on it
   + 1) is made inside it: the root enters it for the making, then goes back to its own (hdr
   root_netns); a socket stays in the namespace it was made in */
static inline long net_enter(struct ctx *c, const struct plan_file *f)
{
	return f->netns ? S2(NR_setns, held_base(c) + f->netns - 1, 0x40000000 /* CLONE_NEWNET */) : 0;
}

static inline long net_leave(struct ctx *c, const struct plan_file *f)
{
	return f->netns ? S2(NR_setns, held_base(c) + c->h->root_netns - 1, 0x40000000 /* CLONE_NEWNET */) : 0;
}

/* expr (a socket's making) inside file f's network namespace (detail d on failure) */
#define IN_NET(c, f, d, expr) ({ chk((c), net_enter((c), (f)), (d)); long in_net_r_ = (expr); chk((c), net_leave((c), (f)), (d)); in_net_r_; })

static inline long xopen(const char *p, u64 flags)
{
	return S4(NR_openat, AT_FDCWD, p, (long)(flags & ~(u64)(O_CREAT | O_EXCL | O_TRUNC)), 0);
}

/* the steps of a task, one file each (called from restorer.c, and across files where noted) */

/* files.c: the tree's file table, a task's descriptors and file locks */
void open_file_table(struct ctx *c) HIDDEN;
void restore_fds(struct ctx *c) HIDDEN;
void restore_locks(struct ctx *c) HIDDEN;
/* I/O signal owners, signals and O_ASYNC (after task_formed: an owner may be any task or thread) */
void task_formed(struct ctx *c) HIDDEN;
void restore_fown(struct ctx *c) HIDDEN;
/* until every task of the tree has made its threads */
void wait_formed(struct ctx *c) HIDDEN;
/* tty.c: pty pairs (root), a session's controlling terminal (leader, after setsid), its foreground group (after task_formed) */
void open_ttys(struct ctx *c) HIDDEN;
void restore_ctty(struct ctx *c) HIDDEN;
void restore_ctty_pgrp(struct ctx *c) HIDDEN;
void open_dev_tty(struct ctx *c, const struct plan_file *f, u64 fd) HIDDEN;
/* pidfds (after task_formed: each names a process of the tree, which must exist) */
void restore_pidfds(struct ctx *c) HIDDEN;
/* files opened by path once every task exists (/proc files of other tasks, namespace files): after task_formed */
void restore_late_files(struct ctx *c) HIDDEN;
/* "/proc/self/fd/N" written at out (room for 35 bytes), with its NUL: the bytes written */
u64 proc_fd_path(char *out, long fd) HIDDEN;
/* an opened file still has the size the plan recorded (~0: not recorded); ESTALE otherwise */
void check_size(struct ctx *c, long fd, u64 want, u64 detail) HIDDEN;

/* memory.c: the address space (special mappings, vmas and their pages: before the children are
 * forked; single-word patches, protections and guard regions: after) and the mm fields */
void restore_mm(struct ctx *c) HIDDEN;
void restore_mm_late(struct ctx *c) HIDDEN;
/* pages two children share but their parent does not: laid before the fork, its own put back after */
u64 lay_for_child(struct ctx *c, u64 ci) HIDDEN;
void refill_after_fork(struct ctx *c) HIDDEN;
void restore_mm_struct(struct ctx *c) HIDDEN;
/* --lazy-pages: the lazy areas registered with a userfaultfd the launcher hands to the daemon */
void lazy_register(struct ctx *c) HIDDEN;
void lazy_close(struct ctx *c) HIDDEN;

/* task.c: signal actions, rlimits, itimers, POSIX timers, scheduling, credentials */
void restore_task_misc(struct ctx *c) HIDDEN;
void create_timers(struct ctx *c) HIDDEN;
void arm_timers(struct ctx *c) HIDDEN;
void restore_sched_oom(struct ctx *c) HIDDEN;
void restore_creds(struct ctx *c) HIDDEN;
void restore_dumpable(struct ctx *c, u64 detail) HIDDEN;

/* ids.c: fn(c, arg) run in a short-lived thread of the task that takes these ids first (-1:
   kept), the task's own left as they are (a tree in a user namespace of its own: plan spare_tid);
   fn's return, or the -errno of taking the ids or of the thread */
struct as_ids {
	long ruid, euid, fsuid, rgid, egid, fsgid;
};
long as_ids(struct ctx *c, const struct as_ids *ids, long (*fn)(struct ctx *, void *), void *arg) HIDDEN;

/* threads.c: the other threads, the wait for "go", seccomp, and the final rt_sigreturn */
void restore_threads(struct ctx *c) HIDDEN;
void wait_go(struct ctx *c) HIDDEN;
void thread_final(struct ctx *c, u64 ti) HIDDEN;

#endif
