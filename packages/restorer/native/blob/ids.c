/*
 * crtools restorer blob: a step taken under other ids without the task changing its own.
 *
 * Some of the kernel's records take the caller's ids: listen() the peer credentials, F_SETOWN_EX
 * the owner's real and effective uid, a new file (a socket file, a pty's slave) its fs ids. A
 * task of a tree in a user namespace of its own still has criu's ids here (its credentials are
 * set at the end), which the namespace's maps may leave unmapped: it can take mapped ids (it has
 * every capability in the namespace) but never come back to criu's. Credentials belong to each
 * thread (a raw syscall changes only the caller's), so such a step runs in a short-lived thread
 * of the task that takes the ids and exits: the task's own stay as they are.
 *
 * The thread takes a pid in the tree's pid namespace: the plan's spare_tid (+ the task's index),
 * one no task, thread or helper of the tree has, asked for with set_tid, so that it can never
 * take a pid a task forked later needs. The task waits until the thread is gone (released: its
 * tid free again) before it goes on. Its change of ids reset the process's dumpable flag: set
 * again once it is gone.
 */
#include "blob.h"

#define NR_tgkill 234
#define CLONE_CHILD_CLEARTID 0x00200000

struct ids_arg {
	struct ctx *c;
	const struct as_ids *ids;
	long (*fn)(struct ctx *, void *);
	void *arg;
	long ret;
	volatile u32 alive;
};

static long take_fs(long nr, long id)
{
	S1(nr, id);
	/* setfsuid/setfsgid report the previous id, never a failure: ask again */
	return S1(nr, -1) == id ? 0 : -EPERM;
}

static void ids_main(void *p)
{
	struct ids_arg *a = p;
	const struct as_ids *d = a->ids;
	long r = 0;
	if (d->rgid != -1 || d->egid != -1)
		r = S3(NR_setresgid, d->rgid, d->egid, -1);
	if (!r && d->fsgid != -1)
		r = take_fs(NR_setfsgid, d->fsgid);
	if (!r && (d->ruid != -1 || d->euid != -1))
		r = S3(NR_setresuid, d->ruid, d->euid, -1);
	if (!r && d->fsuid != -1)
		r = take_fs(NR_setfsuid, d->fsuid);
	if (!r)
		r = a->fn(a->c, a->arg);
	a->ret = r;
	/* returning exits the thread (blob_clone_thread); the kernel clears `alive` and wakes */
}

long as_ids(struct ctx *c, const struct as_ids *ids, long (*fn)(struct ctx *, void *), void *arg)
{
	static const u64 flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
	u8 stack[32 * 1024] __attribute__((aligned(16)));
	struct ids_arg a = { c, ids, fn, arg, 0, 1 };
	u64 tid = c->h->spare_tid + c->idx, tries;
	struct clone_args ca;
	long r;

	if (!c->h->spare_tid)
		return -EINVAL;
	memset(&ca, 0, sizeof(ca));
	ca.flags = flags;
	ca.child_tid = (u64)&a.alive;
	ca.stack = (u64)stack;
	ca.stack_size = sizeof(stack);
	ca.set_tid = (u64)&tid;
	ca.set_tid_size = 1;
	for (tries = 0;; tries++) {
		r = blob_clone_thread(&ca, sizeof(ca), ids_main, &a);
		/* the previous such thread of this task may not be released yet */
		if (r != -EEXIST || tries >= 1000)
			break;
		struct timespec64 ts = { 0, 1000 * 1000 };
		S2(NR_nanosleep, &ts, 0);
	}
	if (r < 0)
		return r;
	if (wait_change(c, &a.alive, 1))
		return -ETIMEDOUT;
	/* its memory is left; until it is released (its tid free, gone from /proc) */
	for (tries = 0; S3(NR_tgkill, c->t->pid, tid, 0) != -ESRCH; tries++) {
		struct timespec64 ts = { 0, 100 * 1000 };
		if (tries >= 100000)
			return -ETIMEDOUT;
		S2(NR_nanosleep, &ts, 0);
	}
	/* its change of ids cleared the dumpable flag, which is the process's: as it was */
	restore_dumpable(c, 0);
	return a.ret;
}
