/*
 * crtools restorer blob: freestanding code that turns a forked process into a
 * checkpointed task. It is mapped, together with the plan block (layout.json),
 * at an address free in both the launcher's and every task's recorded layout.
 * No libc, no globals, no absolute relocations: everything is reached through
 * the plan pointer handed to _start.
 */
#include "plan-layout.h"

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef long long s64;

#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_fstat 5
#define NR_lseek 8
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_pread64 17
#define NR_mremap 25
#define NR_madvise 28
#define NR_dup2 33
#define NR_setitimer 38
#define NR_getpid 39
#define NR_exit 60
#define NR_fcntl 72
#define NR_flock 73
#define NR_chdir 80
#define NR_umask 95
#define NR_setpgid 109
#define NR_setsid 112
#define NR_setgroups 116
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_getpgid 121
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_personality 135
#define NR_setpriority 141
#define NR_sched_setscheduler 144
#define NR_rt_sigqueueinfo 129
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_chroot 161
#define NR_futex 202
#define NR_timer_create 222
#define NR_timer_settime 223
#define NR_timer_delete 226
#define NR_set_tid_address 218
#define NR_exit_group 231
#define NR_epoll_ctl 233
#define NR_ioctl 16
#define NR_kill 62
#define NR_unlink 87
#define NR_newfstatat 262
#define NR_userfaultfd 323
#define NR_socket 41
#define NR_bind 49
#define NR_listen 50
#define NR_shutdown 48
#define NR_socketpair 53
#define NR_setsockopt 54
#define NR_timerfd_create 283
#define NR_timerfd_settime 286
#define NR_signalfd4 289
#define NR_eventfd2 290
#define NR_epoll_create1 291
#define NR_openat 257
#define NR_pipe2 293
#define NR_inotify_init1 294
#define NR_inotify_add_watch 254
#define NR_rt_tgsigqueueinfo 297
#define NR_prlimit64 302
#define NR_rseq 334
#define NR_clone3 435
#define NR_close_range 436

#define PROT_WRITE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_NONBLOCK 04000
#define AT_FDCWD (-100)
#define F_SETFD 2
#define F_SETFL 4
#define F_SETPIPE_SZ 1031
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define PR_SET_NAME 15
#define PR_SET_DUMPABLE 4
#define PR_SET_CHILD_SUBREAPER 36
#define PR_SET_MM 35
#define PR_SET_MM_MAP 14
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_SET_KEEPCAPS 8
#define SECBIT_KEEP_CAPS 0x10
#define PR_CAPBSET_DROP 24
#define PR_SET_SECUREBITS 28
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define SIGCHLD 17
#define SIGKILL 9
#define SIGSTOP 19
#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define ETIMEDOUT 110
#define EAGAIN 11
#define EINTR 4
#define EPERM 1
#define EINVAL 22
#define EEXIST 17
#define EIO 5
#define ESTALE 116
#define EMSGSIZE 90
#define EADDRINUSE 98
#define TASK_TOP 0x7ffffffff000ULL
#define PAGE 4096ULL
#define MAX_THREADS 1024

#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define UC_FP_XSTATE 1
#define UC_SIGCONTEXT_SS 2
#define UC_STRICT_RESTORE_SS 4

#define HIDDEN __attribute__((visibility("hidden")))

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define S0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define S1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define S2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define S6(n, a, b, c, d, e, f) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

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
	volatile u32 ready;
};

struct targ {
	struct ctx *c;
	u64 ti;
};

#define AT(c, off) ((void *)((c)->plan + (off)))
#define STR(c, off) ((const char *)((c)->plan + (off)))

static void set_step(struct ctx *c, u64 step)
{
	c->st->step = step;
}

static __attribute__((noreturn)) void fail(struct ctx *c, u64 err, u64 detail)
{
	c->st->err = err;
	c->st->detail = detail;
	c->st->code = c->st->step;
	__atomic_store_n(&c->st->state, ST_FAILED, __ATOMIC_SEQ_CST);
	for (;;)
		S1(NR_exit_group, 70);
}

/* a negative kernel return is -errno */
static long chk(struct ctx *c, long r, u64 detail)
{
	if (r < 0 && r > -4096)
		fail(c, (u64)-r, detail);
	return r;
}

struct timespec64 {
	s64 sec, nsec;
};

/* wait until *w != v, for at most the plan's timeout; never spins */
static int wait_change(struct ctx *c, volatile u32 *w, u32 v)
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

static long xopen(const char *p, u64 flags)
{
	return S4(NR_openat, AT_FDCWD, p, (long)(flags & ~(u64)(O_CREAT | O_EXCL | O_TRUNC)), 0);
}

static void check_size(struct ctx *c, long fd, u64 want, u64 detail)
{
	u64 st[18];
	if (want == ~0ULL)
		return;
	chk(c, S2(NR_fstat, fd, st), detail);
	if (st[6] != want)
		fail(c, ESTALE, detail);
}

/* A socket's buffer sizes as recorded (getsockopt shows twice what was set; FORCE: past the
   limits, as root) */
static void set_sock_bufs(struct ctx *c, long fd, const struct plan_file *f, u64 detail)
{
	int v;
	if (f->sk_sndbuf) {
		v = (int)(f->sk_sndbuf / 2);
		chk(c, S5(NR_setsockopt, fd, 1 /* SOL_SOCKET */, 32 /* SO_SNDBUFFORCE */, &v, 4), detail);
	}
	if (f->sk_rcvbuf) {
		v = (int)(f->sk_rcvbuf / 2);
		chk(c, S5(NR_setsockopt, fd, 1, 33 /* SO_RCVBUFFORCE */, &v, 4), detail);
	}
}

/* The root opens every file of the tree at fd_base + i; descendants inherit them. */
static void open_file_table(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i, k;

	/* what the launcher holds goes, but for the descriptors handed over by the caller
	   (--inherit-fd), which take their places first (fd_base is above every one of them) */
	for (i = 0; i < n; i++)
		if (f[i].kind == FILE_INHERIT)
			chk(c, S2(NR_dup2, f[i].value, c->h->fd_base + i), i);
	chk(c, S3(NR_close_range, 0, c->h->fd_base - 1, 0), 0);
	chk(c, S3(NR_close_range, c->h->fd_base + n, ~0U, 0), 0);
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind != FILE_REG)
			continue;
		fd = chk(c, xopen(STR(c, f[i].path), f[i].flags), i);
		check_size(c, fd, f[i].size, i);
		if (f[i].pos)
			chk(c, S3(NR_lseek, fd, f[i].pos, 0), i);
		if ((u64)fd != c->h->fd_base + i) {
			chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
			S1(NR_close, fd);
		}
	}
	/* eventfd (its counter written back), signalfd (its mask), epoll (empty: the owner task adds
	   the targets once its descriptors are in place, see restore_fds) */
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind == FILE_EVENTFD) {
			fd = chk(c, S2(NR_eventfd2, 0, f[i].flags & O_NONBLOCK), i);
			if (f[i].value)
				chk(c, S3(NR_write, fd, &f[i].value, 8), i);
		} else if (f[i].kind == FILE_SIGNALFD) {
			fd = chk(c, S4(NR_signalfd4, -1, &f[i].value, 8, f[i].flags & O_NONBLOCK), i);
		} else if (f[i].kind == FILE_TIMERFD) {
			/* clock, ticks, value sec/nsec, interval sec/nsec; the value is the time that was left */
			const u64 *t = AT(c, f[i].data_off);
			u64 its[4] = { t[4], t[5], t[2], t[3] };
			if (!its[2] && !its[3] && (its[0] || its[1]))
				its[3] = 1; /* periodic, caught right at an expiry: next one at once */
			fd = chk(c, S2(NR_timerfd_create, t[0], f[i].flags & O_NONBLOCK), i);
			if (its[2] || its[3])
				chk(c, S4(NR_timerfd_settime, fd, 0, its, 0), i);
			if (t[1])
				chk(c, S3(NR_ioctl, fd, 0x40085400 /* TFD_IOC_SET_TICKS */, &t[1]), i);
		} else if (f[i].kind == FILE_INET) {
			/* not connected TCP/UDP: options, bind (address reuse on while binding), listen */
			int one = 1, v;
			fd = chk(c, S3(NR_socket, f[i].sk_family, f[i].value, f[i].sk_proto), i);
			chk(c, S5(NR_setsockopt, fd, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, &one, 4), i);
			if (f[i].sk_opts & 2)
				chk(c, S5(NR_setsockopt, fd, 1, 15 /* SO_REUSEPORT */, &one, 4), i);
			if (f[i].sk_family == 10) {
				v = (f[i].sk_opts & 4) ? 1 : 0;
				chk(c, S5(NR_setsockopt, fd, 41 /* IPPROTO_IPV6 */, 26 /* IPV6_V6ONLY */, &v, 4), i);
			}
			set_sock_bufs(c, fd, &f[i], i);
			if (f[i].data_len)
				chk(c, S3(NR_bind, fd, AT(c, f[i].data_off), f[i].data_len), i);
			if (f[i].sk_listen)
				chk(c, S2(NR_listen, fd, f[i].sk_backlog), i);
			if (!(f[i].sk_opts & 1)) {
				v = 0;
				chk(c, S5(NR_setsockopt, fd, 1, 2, &v, 4), i);
			}
			if (f[i].flags & O_NONBLOCK)
				chk(c, S3(NR_fcntl, fd, F_SETFL, O_NONBLOCK), i);
		} else if (f[i].kind == FILE_UNIX_BOUND) {
			/* a named unix socket: bind (over a stale socket file left at the name), listen */
			const u8 *sa = AT(c, f[i].data_off);
			long r;
			fd = chk(c, S3(NR_socket, 1 /* AF_UNIX */, f[i].value, 0), i);
			set_sock_bufs(c, fd, &f[i], i);
			r = S3(NR_bind, fd, sa, f[i].data_len);
			if (r == -EADDRINUSE && f[i].data_len > 2 && sa[2]) {
				u64 st[18];
				/* only a socket file is replaced (st_mode at byte 24: S_IFSOCK) */
				if (S4(NR_newfstatat, AT_FDCWD, sa + 2, st, 0x100 /* AT_SYMLINK_NOFOLLOW */) == 0 &&
				    ((st[3] & 0xffffffffULL) & 0170000) == 0140000 && S1(NR_unlink, sa + 2) == 0)
					r = S3(NR_bind, fd, sa, f[i].data_len);
			}
			chk(c, r, i);
			if (f[i].sk_listen)
				chk(c, S2(NR_listen, fd, f[i].sk_backlog), i);
			if (f[i].flags & O_NONBLOCK)
				chk(c, S3(NR_fcntl, fd, F_SETFL, O_NONBLOCK), i);
		} else if (f[i].kind == FILE_INOTIFY) {
			/* each watch under its recorded number: (wd, mask, path length, path padded to 8) */
			const u8 *d = AT(c, f[i].data_off), *end = d + f[i].data_len;
			fd = chk(c, S1(NR_inotify_init1, f[i].flags & O_NONBLOCK), i);
			while (d + 24 <= end) {
				const u64 *w = (const u64 *)d;
				long wd;
				S3(NR_ioctl, fd, 0x40044900 /* INOTIFY_IOC_SETNEXTWD */, w[0]);
				wd = chk(c, S3(NR_inotify_add_watch, fd, d + 24, w[1]), i);
				if ((u64)wd != w[0])
					fail(c, EEXIST, i); /* the kernel gave another number (no SETNEXTWD) */
				d += 24 + ((w[2] + 7) & ~7ULL);
			}
		} else if (f[i].kind == FILE_EPOLL) {
			fd = chk(c, S1(NR_epoll_create1, 0), i);
			if (f[i].flags & O_NONBLOCK)
				chk(c, S3(NR_fcntl, fd, F_SETFL, O_NONBLOCK), i);
		} else
			continue;
		if ((u64)fd != c->h->fd_base + i) {
			chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
			S1(NR_close, fd);
		}
	}
	/* socketpairs: both ends at once, buffer sizes first, then each end's queued messages sent
	   from the other end (non-blocking: a queue that no longer fits fails instead of hanging) */
	for (i = 0; i < n; i++) {
		int sv[2];
		u64 e[2], k;
		if (f[i].kind != FILE_UNIX || !f[i].sk_peer)
			continue;
		e[0] = i;
		e[1] = f[i].sk_peer - 1;
		if (e[1] >= n || f[e[1]].kind != FILE_UNIX || f[e[1]].sk_peer != i + 1)
			fail(c, EINVAL, i);
		chk(c, S4(NR_socketpair, 1 /* AF_UNIX */, f[i].value | 04000 /* SOCK_NONBLOCK */, 0, sv), i);
		for (k = 0; k < 2; k++)
			set_sock_bufs(c, sv[k], &f[e[k]], e[k]);
		for (k = 0; k < 2; k++) {
			struct plan_file *x = &f[e[k]];
			const u8 *q = AT(c, x->data_off), *end = q + x->data_len;
			while (q + 8 <= end) {
				u64 len = *(const u64 *)q;
				const u8 *d = q + 8;
				if (x->value == 1) { /* stream: bytes, in as many writes as it takes */
					u64 left = len;
					while (left) {
						long w = chk(c, S3(NR_write, sv[1 - k], d, left), e[k]);
						d += w;
						left -= (u64)w;
					}
				} else if ((u64)chk(c, S3(NR_write, sv[1 - k], d, len), e[k]) != len) {
					fail(c, EMSGSIZE, e[k]);
				}
				q += 8 + ((len + 7) & ~7ULL);
			}
		}
		for (k = 0; k < 2; k++) {
			struct plan_file *x = &f[e[k]];
			if (x->sk_shutdown & 2)
				chk(c, S2(NR_shutdown, sv[k], 1 /* SHUT_WR */), e[k]);
			if (x->sk_shutdown & 1)
				chk(c, S2(NR_shutdown, sv[k], 0 /* SHUT_RD */), e[k]);
			chk(c, S3(NR_fcntl, sv[k], F_SETFL, x->flags & O_NONBLOCK), e[k]);
			chk(c, S2(NR_dup2, sv[k], c->h->fd_base + e[k]), e[k]);
			S1(NR_close, sv[k]);
		}
		f[e[1]].sk_peer = 0; /* made with this end (the root's private copy of the plan) */
	}
	for (i = 0; i < n; i++) {
		int p[2];
		int have_r = 0, have_w = 0;
		if (f[i].kind != FILE_PIPE_R && f[i].kind != FILE_PIPE_W)
			continue;
		if (f[i].data_len == ~0ULL) /* already made with an earlier end */
			continue;
		chk(c, S2(NR_pipe2, p, 0), i);
		if (f[i].pipe_size)
			chk(c, S3(NR_fcntl, p[1], F_SETPIPE_SZ, f[i].pipe_size), i);
		if (f[i].data_len) {
			const u8 *d = AT(c, f[i].data_off);
			u64 left = f[i].data_len;
			while (left) {
				long w = chk(c, S3(NR_write, p[1], d, left), i);
				d += w;
				left -= (u64)w;
			}
		}
		for (k = i; k < n; k++) {
			long src, dst = (long)(c->h->fd_base + k);
			if ((f[k].kind != FILE_PIPE_R && f[k].kind != FILE_PIPE_W) || f[k].pipe_id != f[i].pipe_id)
				continue;
			src = f[k].kind == FILE_PIPE_R ? p[0] : p[1];
			if (f[k].kind == FILE_PIPE_R && have_r)
				src = (long)(c->h->fd_base + have_r - 1);
			if (f[k].kind == FILE_PIPE_W && have_w)
				src = (long)(c->h->fd_base + have_w - 1);
			chk(c, S2(NR_dup2, src, dst), k);
			chk(c, S3(NR_fcntl, dst, F_SETFL, f[k].flags & O_NONBLOCK), k);
			if (f[k].kind == FILE_PIPE_R && !have_r)
				have_r = (int)k + 1;
			if (f[k].kind == FILE_PIPE_W && !have_w)
				have_w = (int)k + 1;
			if (k != i)
				f[k].data_len = ~0ULL; /* private copy of the plan: mark done */
		}
		S1(NR_close, p[0]);
		S1(NR_close, p[1]);
	}
}

static void restore_fds(struct ctx *c)
{
	struct plan_fd *fd = AT(c, c->t->fds_off);
	u64 i;
	for (i = 0; i < c->t->nfds; i++) {
		chk(c, S2(NR_dup2, c->h->fd_base + fd[i].file, fd[i].fd), fd[i].fd);
		if (fd[i].flags)
			chk(c, S3(NR_fcntl, fd[i].fd, F_SETFD, fd[i].flags), fd[i].fd);
	}
	/* epoll instances this task owns: watch its descriptors again (the instance is one open
	   file, so tasks that share it see the targets too) */
	set_step(c, STEP_EPOLL);
	for (i = 0; i < c->t->nfds; i++) {
		struct plan_file *f = (struct plan_file *)AT(c, c->h->files_off) + fd[i].file;
		const u64 *t = AT(c, f->data_off);
		u64 k;
		if (f->kind != FILE_EPOLL || f->owner != c->t->pid)
			continue;
		for (k = 0; k + 24 <= f->data_len; k += 24, t += 3) {
			struct { u32 events; u64 data; } __attribute__((packed)) ev = { (u32)t[1], t[2] };
			chk(c, S4(NR_epoll_ctl, fd[i].fd, 1 /* EPOLL_CTL_ADD */, t[0], &ev), t[0]);
		}
		f->owner = 0; /* once, even if the task holds it at several descriptors */
	}
	set_step(c, STEP_FDS);
	if (c->h->nfiles)
		chk(c, S3(NR_close_range, c->h->fd_base, c->h->fd_base + c->h->nfiles - 1, 0), 0);
}

/* file locks, taken again without waiting: another holder now is a failure, as in CRIU */
static void restore_locks(struct ctx *c)
{
	const u64 *l = AT(c, c->t->locks_off);
	u64 i;

	set_step(c, STEP_LOCKS);
	for (i = 0; i < c->t->nlocks; i++, l += 5) {
		struct { short type, whence; int pad; s64 start, len; int pid, pad2; } fl = { (short)l[2], 0 /* SEEK_SET */, 0, (s64)l[3], (s64)l[4], 0, 0 };
		if (l[1] == 2)
			chk(c, S2(NR_flock, l[0], (l[2] == 1 ? 2 /* LOCK_EX */ : 1 /* LOCK_SH */) | 4 /* LOCK_NB */), l[0]);
		else
			chk(c, S3(NR_fcntl, l[0], l[1] == 4 ? 37 /* F_OFD_SETLK */ : 6 /* F_SETLK */, &fl), l[0]);
	}
}

/* Page runs flagged uffd (big runs in private anonymous areas, chosen by the plan) are filled
   with UFFDIO_COPY: the kernel allocates each page and copies into it in one go (no zeroing, no
   fault per page), reading through a read-only mapping of the pages image (page cache, no copy).
   They are cut into PAGE_CHUNK pieces, claimed one at a time through the task's status record,
   so that the launcher can take pieces too (with its own copy of the userfaultfd, pidfd_getfd)
   while this task does the same: the copying runs on two CPUs. */
static u64 run_chunks(const struct plan_run *r)
{
	return (r->npages * PAGE + PAGE_CHUNK - 1) / PAGE_CHUNK;
}

/* piece k of the flagged runs: run index, byte offset in it, length */
static u64 chunk_at(const struct plan_run *r, u64 nruns, u64 k, u64 *at, u64 *len)
{
	u64 i;
	for (i = 0; i < nruns; i++) {
		u64 n;
		if (!r[i].uffd)
			continue;
		n = run_chunks(&r[i]);
		if (k < n) {
			*at = k * PAGE_CHUNK;
			*len = r[i].npages * PAGE - *at < PAGE_CHUNK ? r[i].npages * PAGE - *at : PAGE_CHUNK;
			return i;
		}
		k -= n;
	}
	return nruns;
}

/* UFFDIO_COPY len bytes at off of the pages image to dst; 0 or -errno */
static long copy_chunk(long uffd, long pfd, u64 dst, u64 off, u64 len)
{
	struct { u64 dst, src, len, mode; long long copy; } cp;
	long src = S6(NR_mmap, 0, len, 1 /* PROT_READ */, 0x02 | 0x8000 /* MAP_PRIVATE | MAP_POPULATE */, pfd, off), r = 0;
	u64 done = 0;
	int again = 0;

	if (src < 0)
		return src;
	while (done < len) {
		long e;
		cp.dst = dst + done;
		cp.src = (u64)src + done;
		cp.len = len - done;
		cp.mode = 0;
		cp.copy = 0;
		e = S3(NR_ioctl, uffd, 0xc028aa03 /* UFFDIO_COPY */, &cp);
		if (e == 0)
			break;
		if (cp.copy > 0) {
			done += (u64)cp.copy; /* partial: go on from there */
			continue;
		}
		if (e != -EAGAIN || ++again > 1000) {
			r = e;
			break;
		}
	}
	S2(NR_munmap, src, len);
	return r;
}

/* the pages image of run r, kept open while consecutive runs share it */
static long pages_fd(struct ctx *c, const struct plan_run *r, u64 *cur, long *pfd)
{
	u64 path = r->path ? r->path : c->t->pages_path;
	if (path != *cur) {
		if (*pfd >= 0)
			S1(NR_close, *pfd);
		*pfd = chk(c, xopen(STR(c, path), O_RDONLY), r->vaddr);
		*cur = path;
	}
	return *pfd;
}

/* unregister the flagged runs among the first n */
static void uffd_unregister(long uffd, const struct plan_run *r, u64 n)
{
	u64 i;
	for (i = 0; i < n; i++) {
		struct { u64 start, len; } range = { r[i].vaddr, r[i].npages * PAGE };
		if (r[i].uffd)
			S3(NR_ioctl, uffd, 0x8010aa01 /* UFFDIO_UNREGISTER */, &range);
	}
}

/* a userfaultfd with every flagged run registered, or -1 (then every run is read with pread) */
static long uffd_setup(struct plan_run *r, u64 nruns)
{
	u64 api[3] = { 0xAA, 0, 0 }, i;
	long uffd = S1(NR_userfaultfd, 02000000 | 04000 | 1 /* O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY */);
	if (uffd == -EINVAL)
		uffd = S1(NR_userfaultfd, 02000000 | 04000);
	if (uffd < 0)
		return -1;
	if (S3(NR_ioctl, uffd, 0xc018aa3f /* UFFDIO_API */, api) < 0)
		goto no;
	for (i = 0; i < nruns; i++) {
		struct { u64 start, len, mode, ioctls; } reg = { r[i].vaddr, r[i].npages * PAGE, 1 /* MISSING */, 0 };
		if (!r[i].uffd || S3(NR_ioctl, uffd, 0xc020aa00 /* UFFDIO_REGISTER */, &reg) == 0)
			continue;
		uffd_unregister(uffd, r, i);
		goto no;
	}
	return uffd;
no:
	S1(NR_close, uffd);
	return -1;
}

static void restore_pages(struct ctx *c)
{
	struct plan_run *r = AT(c, c->t->runs_off);
	volatile struct plan_status *st = c->st;
	u64 i, k, nchunks = 0, cur = ~0ULL;
	long pfd = -1, uffd = -1;

	for (i = 0; i < c->t->nruns; i++)
		if (r[i].uffd)
			nchunks += run_chunks(&r[i]);
	if (nchunks)
		uffd = uffd_setup(r, c->t->nruns);
	if (uffd >= 0) {
		volatile u32 *pub = (volatile u32 *)(c->h->status_addr + STATUS_PUB_OFF);
		st->uffd = (u64)uffd;
		st->chunks = nchunks;
		__atomic_store_n(&st->claimed, 0, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(pub, 1, __ATOMIC_SEQ_CST);
		S3(NR_futex, pub, FUTEX_WAKE, 0x7fffffff);
		while ((k = __atomic_fetch_add(&st->claimed, 1, __ATOMIC_SEQ_CST)) < nchunks) {
			u64 at = 0, len = 0;
			i = chunk_at(r, c->t->nruns, k, &at, &len);
			if (i >= c->t->nruns)
				fail(c, EINVAL, k);
			chk(c, copy_chunk(uffd, pages_fd(c, &r[i], &cur, &pfd), r[i].vaddr + at, r[i].off + at, len), r[i].vaddr + at);
			__atomic_add_fetch(&st->copied, 1, __ATOMIC_SEQ_CST);
		}
	}
	for (i = 0; i < c->t->nruns; i++) {
		u8 *dst = (u8 *)r[i].vaddr;
		u64 left = r[i].npages * PAGE, off = r[i].off;
		if (r[i].uffd && uffd >= 0)
			continue;
		pages_fd(c, &r[i], &cur, &pfd);
		/* fault the pages in bulk first: much cheaper than one fault per page inside pread
		   (older kernels without MADV_POPULATE_WRITE just fault as before) */
		if (left >= 64 * PAGE)
			S3(NR_madvise, dst, left, 23 /* MADV_POPULATE_WRITE */);
		while (left) {
			long n = S4(NR_pread64, pfd, dst, left, off);
			if (n == -EINTR)
				continue;
			chk(c, n, r[i].vaddr);
			if (n == 0)
				fail(c, EIO, r[i].vaddr); /* pages image shorter than its pagemap */
			dst += n;
			off += (u64)n;
			left -= (u64)n;
		}
	}
	if (pfd >= 0)
		S1(NR_close, pfd);
	if (uffd < 0)
		return;
	/* pieces the launcher took: wait until it has copied them, and for its verdict */
	for (;;) {
		u32 done = __atomic_load_n((volatile u32 *)&st->copied, __ATOMIC_SEQ_CST);
		if (done >= nchunks)
			break;
		chk(c, wait_change(c, (volatile u32 *)&st->copied, done), 0);
	}
	if (st->help_err)
		fail(c, st->help_err, 0);
	uffd_unregister(uffd, r, c->t->nruns);
	S1(NR_close, uffd);
}

static void restore_mm(struct ctx *c)
{
	struct plan_hdr *h = c->h;
	struct plan_special *sp = AT(c, c->t->special_off);
	struct plan_vma *v = AT(c, c->t->vmas_off);
	u64 i, park = h->park_addr;

	/* [vvar], [vvar_vclock], [vdso]: park inside our region, drop the rest, then put them in place */
	set_step(c, STEP_VDSO);
	for (i = 0; i < c->t->nspecial; i++) {
		u64 len = sp[i].end - sp[i].start;
		chk(c, S5(NR_mremap, sp[i].start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, park), i);
		sp[i].start = park;
		sp[i].end = park + len;
		park += len;
	}
	set_step(c, STEP_UNMAP);
	chk(c, S2(NR_munmap, 0, h->region_start), 0);
	chk(c, S2(NR_munmap, h->region_end, TASK_TOP - h->region_end), 1);
	set_step(c, STEP_VDSO);
	for (i = 0; i < c->t->nspecial; i++) {
		u64 len = sp[i].end - sp[i].start;
		if (sp[i].target == ~0ULL)
			chk(c, S2(NR_munmap, sp[i].start, len), i);
		else
			chk(c, S5(NR_mremap, sp[i].start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, sp[i].target), i);
	}

	set_step(c, STEP_MMAP);
	for (i = 0; i < c->t->nvmas; i++) {
		u64 len = v[i].end - v[i].start;
		long fd = -1, a;
		u64 prot = v[i].prot, b;
		if (v[i].kind == VMA_SKIP)
			continue;
		if (v[i].kind != VMA_FILE_SHARED)
			prot |= PROT_WRITE;
		if (v[i].kind == VMA_ANON) {
			a = S6(NR_mmap, v[i].start, len, prot, v[i].flags | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
		} else {
			fd = chk(c, xopen(STR(c, v[i].path), v[i].open_flags), v[i].start);
			check_size(c, fd, v[i].file_size, v[i].start);
			a = S6(NR_mmap, v[i].start, len, prot, (v[i].flags & ~(u64)MAP_ANONYMOUS) | MAP_FIXED, fd, v[i].pgoff);
			S1(NR_close, fd);
		}
		chk(c, a, v[i].start);
		if ((u64)a != v[i].start)
			fail(c, EINVAL, v[i].start);
		for (b = 0; b < 32; b++)
			if (v[i].madv & (1ULL << b))
				chk(c, S3(NR_madvise, v[i].start, len, b), v[i].start);
	}

	set_step(c, STEP_PAGES);
	restore_pages(c);
	{
		/* single words the plan re-points (e.g. GOT slots after a move to another CPU) */
		const u64 *p = AT(c, c->t->patches_off);
		for (i = 0; i < c->t->npatches; i++)
			*(volatile u64 *)p[2 * i] = p[2 * i + 1];
	}

	set_step(c, STEP_MPROTECT);
	for (i = 0; i < c->t->nvmas; i++)
		if (v[i].kind != VMA_SKIP && v[i].kind != VMA_FILE_SHARED && !(v[i].prot & PROT_WRITE))
			chk(c, S3(NR_mprotect, v[i].start, v[i].end - v[i].start, v[i].prot), v[i].start);
}

struct prctl_mm_map {
	u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
		env_end, auxv;
	u32 auxv_size, exe_fd;
};

static void restore_mm_struct(struct ctx *c)
{
	struct plan_task *t = c->t;
	struct prctl_mm_map m;
	long exe = -1;

	set_step(c, STEP_EXE);
	if (t->exe_path) {
		u64 want[18], have[18];
		long self;
		exe = chk(c, xopen(STR(c, t->exe_path), O_RDONLY), 0);
		/* the task already runs that very file (e.g. a Node program restored by crtools' Node):
		   leave exe alone, the kernel refuses to replace an exe that is still mapped (EBUSY) */
		self = xopen("/proc/self/exe", O_RDONLY);
		if (self >= 0) {
			if (S2(NR_fstat, exe, want) == 0 && S2(NR_fstat, self, have) == 0 && want[0] == have[0] && want[1] == have[1]) {
				S1(NR_close, exe);
				exe = -1;
			}
			S1(NR_close, self);
		}
	}
	set_step(c, STEP_MM);
	m.start_code = t->mm_start_code;
	m.end_code = t->mm_end_code;
	m.start_data = t->mm_start_data;
	m.end_data = t->mm_end_data;
	m.start_brk = t->mm_start_brk;
	m.brk = t->mm_brk;
	m.start_stack = t->mm_start_stack;
	m.arg_start = t->mm_arg_start;
	m.arg_end = t->mm_arg_end;
	m.env_start = t->mm_env_start;
	m.env_end = t->mm_env_end;
	m.auxv = (u64)AT(c, t->auxv_off);
	m.auxv_size = (u32)t->auxv_bytes;
	m.exe_fd = (u32)exe;
	chk(c, S5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0), 0);
	if (exe >= 0)
		S1(NR_close, exe);
	chk(c, S5(NR_prctl, PR_SET_DUMPABLE, t->dumpable, 0, 0, 0), 0);
	if (t->personality != 0xffffffffULL)
		chk(c, S1(NR_personality, t->personality), 0);
}

static void restore_task_misc(struct ctx *c)
{
	struct plan_task *t = c->t;
	struct plan_rlimit *rl = AT(c, t->rlimits_off);
	struct plan_sigact *sa = AT(c, t->sigacts_off);
	struct plan_itimer *it = AT(c, t->itimers_off);
	u64 i;

	set_step(c, STEP_RLIMITS);
	for (i = 0; i < t->nrlimits; i++) {
		u64 lim[2] = { rl[i].cur, rl[i].max };
		long r = S4(NR_prlimit64, 0, i, lim, 0);
		/* limits above what this machine allows (no CAP_SYS_RESOURCE) stay as they are */
		if (r == -EPERM)
			continue;
		chk(c, r, i);
	}
	set_step(c, STEP_SIGACTIONS);
	for (i = 1; i <= 64; i++) {
		if (i == SIGKILL || i == SIGSTOP)
			continue;
		chk(c, S4(NR_rt_sigaction, i, &sa[i - 1], 0, 8), i);
	}
	set_step(c, STEP_ITIMERS);
	for (i = 0; i < 3; i++) {
		u64 v[4] = { it[i].isec, it[i].iusec, it[i].vsec, it[i].vusec };
		if (v[0] | v[1] | v[2] | v[3])
			chk(c, S3(NR_setitimer, i, v, 0), i);
	}
	if (t->child_subreaper)
		chk(c, S5(NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

/* the kernel's struct sigevent: value, signo, notify, then the target tid (64 bytes in all) */
struct ksigevent {
	u64 value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};

/* POSIX timers get their recorded ids back: the kernel takes the wanted id in *id when
 * PR_TIMER_CREATE_RESTORE_IDS is on; older kernels hand ids out in order, so timers are created
 * (and the extra ones deleted) until the wanted id comes up. Armed later, just before sigreturn. */
static void create_timers(struct ctx *c)
{
	struct plan_ptimer *pt = AT(c, c->t->timers_off);
	u64 i, n = c->t->ntimers;
	int by_id;
	long r;

	if (!n)
		return;
	set_step(c, STEP_TIMERS);
	r = S5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
	if (r != 0 && r != -EINVAL)
		fail(c, (u64)-r, 0);
	by_id = r == 0;
	for (i = 0; i < n; i++) {
		struct ksigevent sev;
		int id, tries;
		memset(&sev, 0, sizeof(sev));
		sev.value = pt[i].sival;
		sev.signo = (int)pt[i].signo;
		sev.notify = (int)pt[i].notify;
		sev.tid = (int)pt[i].notify_tid;
		if (by_id) {
			id = (int)pt[i].id;
			chk(c, S3(NR_timer_create, pt[i].clock_id, &sev, &id), pt[i].id);
			if ((u64)id != pt[i].id)
				fail(c, EEXIST, pt[i].id);
			continue;
		}
		for (tries = 0;; tries++) {
			if (tries > 65536)
				fail(c, EEXIST, pt[i].id);
			chk(c, S3(NR_timer_create, pt[i].clock_id, &sev, &id), pt[i].id);
			if ((u64)id == pt[i].id)
				break;
			if ((u64)id > pt[i].id)
				fail(c, EEXIST, pt[i].id);
			chk(c, S1(NR_timer_delete, id), (u64)id);
		}
	}
	if (by_id)
		chk(c, S5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0), 0);
}

static void arm_timers(struct ctx *c)
{
	struct plan_ptimer *pt = AT(c, c->t->timers_off);
	u64 i;

	set_step(c, STEP_TIMERS);
	for (i = 0; i < c->t->ntimers; i++) {
		u64 its[4] = { pt[i].isec, pt[i].insec, pt[i].vsec, pt[i].vnsec };
		if (!(its[2] | its[3]))
			continue; /* disarmed when dumped */
		chk(c, S4(NR_timer_settime, pt[i].id, 0, its, 0), pt[i].id);
	}
}

/* Scheduling of every thread (by tid) and the OOM score adjustment, while the task still has
 * the restorer's privileges (raising priority needs CAP_SYS_NICE, lowering oom_score_adj
 * CAP_SYS_RESOURCE). */
static void restore_sched_oom(struct ctx *c)
{
	struct plan_thread *th = AT(c, c->t->threads_off);
	u64 i;

	set_step(c, STEP_SCHED);
	for (i = 0; i < c->t->nthreads; i++) {
		int prio = (int)th[i].sched_prio;
		if (!th[i].has_sched)
			continue;
		chk(c, S3(NR_setpriority, 0 /* PRIO_PROCESS */, th[i].tid, (int)th[i].sched_nice), th[i].tid);
		chk(c, S3(NR_sched_setscheduler, th[i].tid, th[i].sched_policy, &prio), th[i].tid);
	}
	if (c->t->has_oom_adj) {
		char buf[16], *p = buf + sizeof(buf);
		long v = (long)c->t->oom_adj, fd, n;
		int neg = v < 0;
		u64 u = neg ? (u64)-v : (u64)v;
		set_step(c, STEP_OOM);
		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (neg)
			*--p = '-';
		n = buf + sizeof(buf) - p;
		fd = chk(c, xopen("/proc/self/oom_score_adj", O_WRONLY), 0);
		chk(c, S3(NR_write, fd, p, n), (u64)v);
		S1(NR_close, fd);
	}
}

static void restore_creds(struct ctx *c)
{
	struct plan_task *t = c->t;
	u64 *g = AT(c, t->groups_off);
	u32 groups[256];
	u64 i;

	set_step(c, STEP_CREDS);
	for (i = 0; i < t->ngroups && i < 256; i++)
		groups[i] = (u32)g[i];
	chk(c, S2(NR_setgroups, i, groups), 0);
	chk(c, S3(NR_setresgid, t->gid, t->egid, t->sgid), 1);
	S1(NR_setfsgid, t->fsgid);
	if (t->has_caps) {
		/* the bounding set shrinks first (needs CAP_SETPCAP); caps past the kernel's last are EINVAL */
		set_step(c, STEP_CAPS);
		for (i = 0; i < 64; i++)
			if (!(t->cap_bnd & (1ULL << i))) {
				long r = S5(NR_prctl, PR_CAPBSET_DROP, i, 0, 0, 0);
				if (r == -EINVAL)
					break;
				chk(c, r, 100 + i);
			}
		/* securebits as recorded, plus keep-caps so the permitted set survives the uid change
		 * below (needs CAP_SETPCAP, which the restorer still has) */
		chk(c, S5(NR_prctl, PR_SET_SECUREBITS, t->secbits | SECBIT_KEEP_CAPS, 0, 0, 0), 3);
		set_step(c, STEP_CREDS);
	}
	chk(c, S3(NR_setresuid, t->uid, t->euid, t->suid), 2);
	S1(NR_setfsuid, t->fsuid);
	if (t->has_caps) {
		u32 hdr[2] = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
		u32 data[6] = { (u32)t->cap_eff, (u32)t->cap_prm, (u32)t->cap_inh,
				(u32)(t->cap_eff >> 32), (u32)(t->cap_prm >> 32), (u32)(t->cap_inh >> 32) };
		set_step(c, STEP_CAPS);
		chk(c, S2(NR_capset, hdr, data), 4);
		for (i = 0; i < 64; i++)
			if (t->cap_amb & (1ULL << i))
				chk(c, S5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0), 200 + i);
		if (!(t->secbits & SECBIT_KEEP_CAPS))
			chk(c, S5(NR_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0), 5);
		if (t->no_new_privs)
			chk(c, S5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 6);
	}
}

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

static void thread_final(struct ctx *c, u64 ti)
{
	struct plan_thread *th = (struct plan_thread *)AT(c, c->t->threads_off) + ti;
	u8 *stack_lo = (u8 *)(c->h->stack_area + ti * c->h->stack_size);

	set_step(c, STEP_TLS);
	if (th->comm)
		S5(NR_prctl, PR_SET_NAME, STR(c, th->comm), 0, 0, 0);
	chk(c, S2(NR_arch_prctl, ARCH_SET_FS, th->fs_base), th->tid);
	if (th->gs_base)
		chk(c, S2(NR_arch_prctl, ARCH_SET_GS, th->gs_base), th->tid);
	S1(NR_set_tid_address, th->clear_tid);
	set_step(c, STEP_RSEQ);
	if (th->rseq_ptr)
		chk(c, S4(NR_rseq, th->rseq_ptr, th->rseq_len, 0, th->rseq_sig), th->tid);
	/* pending signals go back on the queues while everything is still blocked here; the
	 * sigreturn below installs the recorded mask, so blocked ones stay pending */
	if (ti == 0)
		arm_timers(c);
	set_step(c, STEP_SIGNALS);
	queue_signals(c, th->tid, th->nsigs, th->sigs_off, 1);
	if (ti == 0)
		queue_signals(c, c->t->pid, c->t->nsigs, c->t->sigs_off, 0);
	set_step(c, STEP_SIGRETURN);
	if (ti == 0)
		__atomic_store_n(&c->st->state, ST_RESUMED, __ATOMIC_SEQ_CST);
	jump_to_task(c, th, stack_lo);
}

static void wait_go(struct ctx *c)
{
	int r = wait_change(c, c->go, 0);
	if (r)
		fail(c, (u64)-r, 0);
	if (*c->go != 1) /* abort requested by the launcher */
		for (;;)
			S1(NR_exit_group, 71);
}

static void thread_main(void *p)
{
	struct targ *a = p;
	struct ctx *c = a->c;
	u64 ti = a->ti;
	/* credentials belong to each thread (raw syscalls change only the caller's): every thread
	   takes the task's, as glibc keeps them equal across threads */
	restore_creds(c);
	__atomic_add_fetch(&c->ready, 1, __ATOMIC_SEQ_CST);
	S3(NR_futex, &c->ready, FUTEX_WAKE, 1);
	wait_go(c);
	thread_final(c, ti);
}

static void restore_threads(struct ctx *c)
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

HIDDEN __attribute__((noreturn)) void restorer_task(u8 *plan, u64 idx)
{
	struct ctx cx;
	struct ctx *c = &cx;
	struct plan_task *tasks;
	u64 all = ~0ULL, i;

	c->plan = plan;
	c->h = (struct plan_hdr *)plan;
	tasks = AT(c, c->h->tasks_off);
	c->t = &tasks[idx];
	c->idx = idx;
	c->st = (volatile struct plan_status *)(c->h->status_addr + STATUS_TASKS_OFF + idx * PLAN_STATUS_SIZE);
	c->go = (volatile u32 *)(c->h->status_addr + STATUS_GO_OFF);
	c->ready = 0;
	c->st->pid = c->t->pid;
	set_step(c, STEP_START);
	__atomic_store_n(&c->st->state, ST_STARTED, __ATOMIC_SEQ_CST);

	/* nothing of the target may run before its state is complete */
	S4(NR_rt_sigprocmask, 2, &all, 0, 8);

	if (c->t->parent == NO_PARENT) {
		set_step(c, STEP_FILES);
		open_file_table(c);
	}
	set_step(c, STEP_SESSION);
	if (c->t->sid == c->t->pid)
		chk(c, S0(NR_setsid), 0);
	if ((u64)S1(NR_getpgid, 0) != c->t->pgid)
		chk(c, S2(NR_setpgid, 0, c->t->pgid == c->t->pid ? 0 : c->t->pgid), c->t->pgid);

	if (c->t->zombie) {
		/* a zombie: it only has to end as it did (its parent has not waited for it) */
		u64 status = c->t->zombie - 1, sig = status & 0x7f;
		struct plan_thread *th = AT(c, c->t->threads_off);
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

	set_step(c, STEP_FORK);
	for (i = 0; i < c->h->ntasks; i++) {
		struct clone_args ca;
		u64 pid = tasks[i].pid;
		long r;
		if (tasks[i].parent != idx)
			continue;
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		ca.set_tid = (u64)&pid;
		ca.set_tid_size = 1;
		r = chk(c, S2(NR_clone3, &ca, sizeof(ca)), pid);
		if (r == 0)
			restorer_task(plan, i);
	}

	set_step(c, STEP_FDS);
	restore_fds(c);
	restore_locks(c);
	set_step(c, STEP_FS);
	if (c->t->root && !(STR(c, c->t->root)[0] == '/' && STR(c, c->t->root)[1] == 0)) {
		chk(c, S1(NR_chdir, STR(c, c->t->root)), 0);
		chk(c, S1(NR_chroot, "."), 0);
	}
	if (c->t->cwd)
		chk(c, S1(NR_chdir, STR(c, c->t->cwd)), 0);
	S1(NR_umask, c->t->umask);

	restore_mm(c);
	restore_mm_struct(c);
	restore_task_misc(c);
	restore_threads(c);
	create_timers(c);
	restore_sched_oom(c);
	restore_creds(c);

	set_step(c, STEP_READY);
	__atomic_store_n(&c->st->state, ST_READY, __ATOMIC_SEQ_CST);
	set_step(c, STEP_GO);
	wait_go(c);
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
