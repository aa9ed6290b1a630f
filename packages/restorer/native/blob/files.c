/*
 * crtools restorer blob: files. The root opens every file of the tree; each task takes its
 * descriptors (dup2 from the table), epoll targets and file locks.
 */
#include "blob.h"

void check_size(struct ctx *c, long fd, u64 want, u64 detail)
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
/* One buffer size (want: the size the kernel kept, twice what is asked): forced (beyond
   net.core.[wr]mem_max, as the task may have had it); in a user namespace of the tree's own the
   forcing option needs privileges over criu's and is refused: the plain one sets the same size
   when it is within the maximum, which is checked (beyond it the restore fails, as it must) */
static void set_sock_buf(struct ctx *c, long fd, int force, int plain, u64 want, u64 detail)
{
	int v = (int)(want / 2), got = 0;
	u32 len = 4;
	long r = S5(NR_setsockopt, fd, 1 /* SOL_SOCKET */, force, &v, 4);
	if (r != -1 /* -EPERM */) {
		chk(c, r, detail);
		return;
	}
	chk(c, S5(NR_setsockopt, fd, 1, plain, &v, 4), detail);
	chk(c, S5(NR_getsockopt, fd, 1, plain, &got, &len), detail);
	if ((u64)(u32)got != want)
		chk(c, -1 /* -EPERM */, detail);
}

static void set_sock_bufs(struct ctx *c, long fd, const struct plan_file *f, u64 detail)
{
	if (f->sk_sndbuf)
		set_sock_buf(c, fd, 32 /* SO_SNDBUFFORCE */, 7 /* SO_SNDBUF */, f->sk_sndbuf, detail);
	if (f->sk_rcvbuf)
		set_sock_buf(c, fd, 33 /* SO_RCVBUFFORCE */, 8 /* SO_RCVBUF */, f->sk_rcvbuf, detail);
}

/* A socket's own options, setsockopt calls in the plan's order (a filter's instructions are
   wrapped in the sock_fprog the kernel takes) */
static void set_sock_opts_when(struct ctx *c, long fd, const struct plan_file *f, u64 detail, u64 when)
{
	const struct plan_sockopt *o = AT(c, f->sk_setopts_off);
	u64 i;
	for (i = 0; i < f->sk_nsetopts; i++) {
		const void *val = AT(c, o[i].data);
		if ((o[i].level >> 32) != when)
			continue;
		if (o[i].level == 1 && o[i].name == 26 /* SO_ATTACH_FILTER */) {
			struct {
				u16 len;
				u16 pad[3];
				const void *filter;
			} prog = { (u16)(o[i].len / 8), { 0, 0, 0 }, val };
			chk(c, S5(NR_setsockopt, fd, 1, 26, &prog, sizeof(prog)), detail);
		} else {
			chk(c, S5(NR_setsockopt, fd, (u32)o[i].level, o[i].name, val, o[i].len), detail);
		}
	}
}

/* the calls made once the socket exists; those marked (level bit 32) wait until it is bound
   and connected (set_sock_opts_late) */
static void set_sock_opts(struct ctx *c, long fd, const struct plan_file *f, u64 detail)
{
	set_sock_opts_when(c, fd, f, detail, 0);
}

static void set_sock_opts_late(struct ctx *c, long fd, const struct plan_file *f, u64 detail)
{
	set_sock_opts_when(c, fd, f, detail, 1);
}

/* "/proc/self/fd/N" written at out, with its NUL: the bytes written */
u64 proc_fd_path(char *out, long fd)
{
	static const char pre[] = "/proc/self/fd/";
	char dig[20];
	u64 k = 0, m = 0, j;
	for (j = 0; pre[j]; j++)
		out[m++] = pre[j];
	do
		dig[k++] = (char)('0' + fd % 10);
	while ((fd /= 10));
	while (k)
		out[m++] = dig[--k];
	out[m++] = 0;
	return m;
}

/* "/proc/self/fd/N": how a socket whose name was unlinked, or is relative (to the directory it
   was bound in), is reached (through the O_PATH descriptor on its socket file kept at fd_base +
   nfiles + its index) */
static u64 proc_fd_addr(u8 *sa, long fd)
{
	sa[0] = 1; /* AF_UNIX */
	sa[1] = 0;
	return 2 + proc_fd_path((char *)sa + 2, fd);
}

/* Every IP socket of the task made on its own is bound: its address and port reuse back to the
   task's (sk_opts 1: SO_REUSEADDR, 2: SO_REUSEPORT), off where it had them off. */
static void inet_reuse_back(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i;
	int zero = 0;

	for (i = 0; i < n; i++) {
		long fd = (long)(c->h->fd_base + i);
		if (f[i].kind != FILE_INET || (f[i].sk_family != 2 && f[i].sk_family != 10))
			continue;
		if (!(f[i].sk_opts & 1))
			chk(c, S5(NR_setsockopt, fd, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, &zero, 4), i);
		if (!(f[i].sk_opts & 2))
			chk(c, S5(NR_setsockopt, fd, 1, 15 /* SO_REUSEPORT */, &zero, 4), i);
	}
}

/*
 * --root (hdr root): the path names of unix sockets are the tree's, and the tree's mounts lie
 * below that directory until the tasks are restored (a name is what the socket reports, so it
 * cannot be prefixed, and it would not fit sun_path's 108 bytes anyway). The task takes that
 * directory as its root for a bind or a connect by such a name: the descriptor on its own root
 * returned, for out_of_root (none: -1).
 */
static long into_root(struct ctx *c, u64 i)
{
	long old;
	if (!c->h->root)
		return -1;
	old = chk(c, S4(NR_openat, AT_FDCWD, "/", 010000000 /* O_PATH */ | 0200000 /* O_DIRECTORY */, 0), i);
	chk(c, S1(NR_chroot, STR(c, c->h->root)), i);
	return old;
}

/* back to the root kept on `old` (none: -1), the working directory left as it was */
static void out_of_root(struct ctx *c, long old, u64 i)
{
	long here;
	if (old < 0)
		return;
	here = chk(c, S4(NR_openat, AT_FDCWD, ".", 010000000 /* O_PATH */ | 0200000 /* O_DIRECTORY */, 0), i);
	chk(c, S1(NR_fchdir, old), i);
	chk(c, S1(NR_chroot, "."), i);
	chk(c, S1(NR_fchdir, here), i);
	S1(NR_close, here);
	S1(NR_close, old);
}

/* Is plan socket t reached through the O_PATH descriptor kept on its socket file (its name
   unlinked, relative, or a path of the tree's under --root) rather than by its name? */
static int reached_by_fd(struct ctx *c, const struct plan_file *t)
{
	const u8 *sa = AT(c, t->data_off);
	return t->sk_ghost || t->path || (c->h->root && t->data_len > 2 && sa[2]);
}

/* into directory `dir` (a string of the plan) for a relative unix name: the working directory
   kept on the descriptor returned, for leave_dir */
static long enter_dir(struct ctx *c, u64 dir, u64 i)
{
	long here = chk(c, S4(NR_openat, AT_FDCWD, ".", 010000000 /* O_PATH */ | 0200000 /* O_DIRECTORY */, 0), i);
	chk(c, S1(NR_chdir, STR(c, dir)), i);
	return here;
}

/* back to the working directory kept on `here` (none: -1) */
static void leave_dir(struct ctx *c, long here, u64 i)
{
	if (here < 0)
		return;
	chk(c, S1(NR_fchdir, here), i);
	S1(NR_close, here);
}

/*
 * The directories missing on the way to path name sa (removed since the socket was bound in
 * them, as zdtm sk-unix01 removes them): made for the moment, mode 0700, their ends noted in
 * `at` (offsets of the slash after each, at most 16) for unmake_dirs. Returns how many.
 */
static int make_dirs(char *buf, const u8 *sa, u64 len, int *at)
{
	u64 k, n = len - 2 < 108 ? len - 2 : 108;
	int made = 0;
	for (k = 0; k < n && sa[2 + k]; k++)
		buf[k] = (char)sa[2 + k];
	buf[k] = 0;
	for (n = 1; n < k && made < 16; n++) {
		if (buf[n] != '/')
			continue;
		buf[n] = 0;
		if (S2(NR_mkdir, buf, 0700) == 0)
			at[made++] = (int)n;
		buf[n] = '/';
	}
	return made;
}

/* the directories make_dirs made, removed again (the deepest first) */
static void unmake_dirs(char *buf, const int *at, int made)
{
	while (made-- > 0) {
		buf[at[made]] = 0;
		S1(NR_rmdir, buf);
	}
}

/*
 * Bind fd to the path name sa without leaving a file of its own: whatever sits at the path is
 * moved aside for the moment, the new socket file unlinked once bound (an O_PATH descriptor on
 * it kept at `keep` first, unless -1), and what was there moved back; directories removed
 * since are made for the moment and removed again. Returns bind's answer.
 */
static long bind_aside(struct ctx *c, long fd, const u8 *sa, u64 len, long keep, u64 i)
{
	const char *path = (const char *)sa + 2;
	char aside[140], buf[112];
	u64 k = 0, j, st[18];
	int moved = 0, at[16], made = 0;
	long r;
	static const char suf[] = ".crtools-sk-ghost";
	while (path[k] && k < 108)
		aside[k] = path[k], k++;
	for (j = 0; suf[j]; j++)
		aside[k++] = suf[j];
	aside[k] = 0;
	if (S4(NR_newfstatat, AT_FDCWD, path, st, 0x100 /* AT_SYMLINK_NOFOLLOW */) == 0) {
		S1(NR_unlink, aside);
		chk(c, S2(NR_rename, path, aside), i);
		moved = 1;
	}
	r = S3(NR_bind, fd, sa, len);
	if (r == -ENOENT && (made = make_dirs(buf, sa, len, at)))
		r = S3(NR_bind, fd, sa, len);
	if (r == 0) {
		if (keep >= 0) {
			long o = S4(NR_openat, AT_FDCWD, path, 010000000 /* O_PATH */, 0);
			if (o >= 0 && o != keep) {
				r = S2(NR_dup2, o, keep);
				S1(NR_close, o);
			} else if (o < 0)
				r = o;
		}
		S1(NR_unlink, path);
	}
	if (moved)
		S2(NR_rename, aside, path);
	unmake_dirs(buf, at, made);
	return r;
}

/* bind() that makes a socket file, which gets the caller's fs ids: in a tree of a user namespace
   of its own, made as its recorded owner by a thread of the task (as_ids): one that criu's ids
   made (unmapped there, maybe) could not be given its owner, nor made anyone's, by the task */
struct bind_arg {
	long fd;
	const void *sa;
	u64 len;
};

static long bind_as(struct ctx *c, void *p)
{
	struct bind_arg *a = p;
	return S3(NR_bind, a->fd, a->sa, a->len);
}

static long bind_file(struct ctx *c, long fd, const void *sa, u64 len, const struct plan_file *f)
{
	if (c->h->spare_tid && f->sk_mode) {
		struct as_ids ids = { -1, -1, (long)f->sk_uid, -1, -1, (long)f->sk_gid };
		struct bind_arg a = { fd, sa, len };
		return as_ids(c, &ids, bind_as, &a);
	}
	return S3(NR_bind, fd, sa, len);
}

/* socket(): a ping socket (ICMP / ICMPv6 datagram) is for a caller whose effective or a
   supplementary gid is in the network namespace's net.ipv4.ping_group_range. In a tree of a user
   namespace of its own criu's gids may be unmapped there, outside any range it sets: a thread of
   the task makes it as the root task's effective gid, or else one of its groups (as_ids). */
struct socket_arg {
	long family, type, proto;
};

static long socket_as(struct ctx *c, void *p)
{
	struct socket_arg *a = p;
	return S3(NR_socket, a->family, a->type, a->proto);
}

static long inet_socket(struct ctx *c, const struct plan_file *f)
{
	struct socket_arg a = { (long)f->sk_family, (long)f->value, (long)f->sk_proto };
	int ping = (f->sk_family == 2 && f->sk_proto == 1) || (f->sk_family == 10 && f->sk_proto == 58);
	const u64 *g = AT(c, c->t->groups_off);
	long r;
	u64 k;
	if (!c->h->spare_tid || !ping || (f->value & 0xf) != 2 /* SOCK_DGRAM */)
		return socket_as(c, &a);
	for (k = 0; k <= c->t->ngroups; k++) {
		struct as_ids ids = { -1, -1, -1, -1, (long)(k ? g[k - 1] : c->t->egid), -1 };
		r = as_ids(c, &ids, socket_as, &a);
		if (r != -EACCES)
			break;
	}
	return r;
}

/*
 * Name an end of a connected pair (sk_conn_*: the name, path: the directory of a relative one).
 * sk_ghost: without a file of its own — the end of a connection accepted from a listener closed
 * since, named after it (the listener's file stays as it is), or an end bound to a name whose
 * file was unlinked since; else (a datagram pair end bound to a name of its own) bound with its
 * socket file, given the recorded owner and mode.
 */
static void unix_name_end(struct ctx *c, long fd, const struct plan_file *f, u64 i)
{
	const u8 *sa = AT(c, f->sk_conn_off);
	long here = -1, root;
	if (!f->sk_conn_len)
		return;
	if (!sa[2]) {
		chk(c, S3(NR_bind, fd, sa, f->sk_conn_len), i); /* abstract */
		return;
	}
	root = into_root(c, i);
	if (f->path)
		here = enter_dir(c, f->path, i);
	if (f->sk_ghost) {
		chk(c, bind_aside(c, fd, sa, f->sk_conn_len, -1, i), i);
	} else {
		const char *path = (const char *)sa + 2;
		u64 st[18];
		long r = bind_file(c, fd, sa, f->sk_conn_len, f);
		/* a stale socket file at the name (the dumped one's) is replaced, nothing else */
		if (r == -EADDRINUSE && S4(NR_newfstatat, AT_FDCWD, path, st, 0x100 /* AT_SYMLINK_NOFOLLOW */) == 0 &&
		    ((st[3] & 0xffffffffULL) & 0170000) == 0140000 && S1(NR_unlink, path) == 0)
			r = bind_file(c, fd, sa, f->sk_conn_len, f);
		chk(c, r, i);
		if (f->sk_mode) {
			chk(c, S5(NR_fchownat, AT_FDCWD, path, f->sk_uid, f->sk_gid, 0x100 /* AT_SYMLINK_NOFOLLOW */), i);
			chk(c, S3(NR_fchmodat, AT_FDCWD, path, f->sk_mode & 07777), i);
		}
	}
	leave_dir(c, here, i);
	out_of_root(c, root, i);
}

/*
 * Bind a unix socket to its recorded name. A path name gets the recorded owner and mode of its
 * socket file; a stale socket file at the name is replaced. A name whose file was unlinked
 * (sk_ghost) is bound with whatever sits at the path moved aside for the moment, an O_PATH
 * descriptor on the new socket file kept (others connect through it) and the file unlinked again.
 */
static void unix_bind_here(struct ctx *c, long fd, const struct plan_file *f, u64 i, u64 n);

static void unix_bind(struct ctx *c, long fd, const struct plan_file *f, u64 i, u64 n)
{
	const u8 *sa = AT(c, f->data_off);
	long root;
	if (f->data_len <= 2 || !sa[2]) {
		/* no name, or an abstract one (the network namespace's) */
		unix_bind_here(c, fd, f, i, n);
		return;
	}
	root = into_root(c, i);
	unix_bind_here(c, fd, f, i, n);
	out_of_root(c, root, i);
}

static void unix_bind_here(struct ctx *c, long fd, const struct plan_file *f, u64 i, u64 n)
{
	const u8 *sa = AT(c, f->data_off);
	const char *path = (const char *)sa + 2;
	u64 st[18];
	long r, here = -1;

	if (!f->data_len)
		return;
	/* a relative name (path: the directory it was bound in): bound there, the working
	   directory kept and gone back to after */
	if (f->path && sa[2])
		here = enter_dir(c, f->path, i);
	if (f->sk_ghost) {
		r = bind_aside(c, fd, sa, f->data_len, (long)(c->h->fd_base + n + i), i);
		chk(c, r, i);
		leave_dir(c, here, i);
		return;
	}
	r = bind_file(c, fd, sa, f->data_len, f);
	if (r == -EADDRINUSE && f->data_len > 2 && sa[2]) {
		/* only a socket file is replaced (st_mode at byte 24: S_IFSOCK) */
		if (S4(NR_newfstatat, AT_FDCWD, path, st, 0x100 /* AT_SYMLINK_NOFOLLOW */) == 0 &&
		    ((st[3] & 0xffffffffULL) & 0170000) == 0140000 && S1(NR_unlink, path) == 0)
			r = bind_file(c, fd, sa, f->data_len, f);
	}
	chk(c, r, i);
	if (f->sk_mode && sa[2]) {
		chk(c, S5(NR_fchownat, AT_FDCWD, path, f->sk_uid, f->sk_gid, 0x100 /* AT_SYMLINK_NOFOLLOW */), i);
		chk(c, S3(NR_fchmodat, AT_FDCWD, path, f->sk_mode & 07777), i);
	}
	if (here >= 0 || (c->h->root && sa[2])) {
		/* others reach it from anywhere (and from outside the tree's root) through a
		   descriptor on its socket file */
		r = chk(c, S4(NR_openat, AT_FDCWD, path, 010000000 /* O_PATH */, 0), i);
		if ((u64)r != c->h->fd_base + n + i) {
			chk(c, S2(NR_dup2, r, c->h->fd_base + n + i), i);
			S1(NR_close, r);
		}
		leave_dir(c, here, i);
	}
}

/* listen() on a unix socket records its caller's effective ids as the listener's peer
   credentials (SO_PEERCRED): its first holder's (sk_euid/sk_egid; else this task's) are taken for that call (they are set for good only
   at the end, root's until then); the real uid stays 0, so root's come back. In a tree of a user
   namespace of its own criu's ids may not be mapped there: the call is made by a thread of the
   task that takes the ids (as_ids), the task's own left as they are. */
struct listen_arg {
	long fd, backlog;
};

static long listen_as(struct ctx *c, void *p)
{
	struct listen_arg *a = p;
	return S2(NR_listen, a->fd, a->backlog);
}

static void unix_listen(struct ctx *c, long fd, long backlog, int i) {
	const struct plan_file *f = (const struct plan_file *)AT(c, c->h->files_off) + i;
	u64 euid = f->sk_euid != 0xffffffffULL ? f->sk_euid : c->t->euid;
	u64 egid = f->sk_egid != 0xffffffffULL ? f->sk_egid : c->t->egid;
	u32 r = 0, e = 0, s = 0, rg = 0, eg = 0, sg = 0;
	long ret;
	if (c->h->spare_tid) {
		struct as_ids ids = { -1, (long)euid, -1, -1, (long)egid, -1 };
		struct listen_arg a = { fd, backlog };
		chk(c, as_ids(c, &ids, listen_as, &a), i);
		return;
	}
	chk(c, S3(NR_getresuid, &r, &e, &s), i);
	chk(c, S3(NR_getresgid, &rg, &eg, &sg), i);
	chk(c, S3(NR_setresgid, -1, egid, -1), i);
	chk(c, S3(NR_setresuid, -1, euid, -1), i);
	ret = S2(NR_listen, fd, backlog);
	chk(c, S3(NR_setresuid, r, e, -1), i);
	chk(c, S3(NR_setresgid, rg, eg, -1), i);
	chk(c, ret, i);
	/* a change of effective ids clears the dumpable flag: as it was */
	restore_dumpable(c, i);
}

/* Connect a unix socket to socket t of the plan (a listener or a bound datagram socket), by
   its name or, when that was unlinked, through the descriptor kept on its socket file. */
static void unix_connect(struct ctx *c, long fd, u64 t, u64 i, u64 n)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u8 sa[64];
	if (t >= n || f[t].kind != FILE_UNIX_BOUND || !f[t].data_len)
		fail(c, EINVAL, i);
	if (reached_by_fd(c, &f[t]))
		chk(c, S3(NR_connect, fd, sa, proc_fd_addr(sa, (long)(c->h->fd_base + n + t))), i);
	else
		chk(c, S3(NR_connect, fd, AT(c, f[t].data_off), f[t].data_len), i);
}

/* The address others reach plan socket t at: its name or, when that was unlinked, the
   descriptor kept on its socket file; sa has room for the latter. Its length goes to *len. */
static const void *unix_addr(struct ctx *c, u64 t, u8 *sa, u64 *len)
{
	struct plan_file *f = AT(c, c->h->files_off);
	if (reached_by_fd(c, &f[t])) {
		*len = proc_fd_addr(sa, (long)(c->h->fd_base + c->h->nfiles + t));
		return sa;
	}
	*len = f[t].data_len;
	return AT(c, f[t].data_off);
}

/*
 * Send the recorded queue of plan socket r: each message (length, sender, descriptor count,
 * the descriptors' plan indexes, then its bytes padded to 8) from its recorded sender (plan
 * index + 1) to r's address, or else from fd (to r's address unless `connected`), with the
 * descriptors it carried (SCM_RIGHTS, the files of the plan at fd_base + index). Stream bytes
 * go in as many writes as it takes (descriptors with the first), one write per message
 * otherwise; never waiting (a queue that no longer fits fails instead of hanging).
 */
static void send_queue(struct ctx *c, long fd, int connected, u64 r, const u8 *q, u64 qlen)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 type = f[r].value;
	const u8 *end = q + qlen;
	u8 sa[64];
	u64 tolen = 0;
	const void *to = 0;
	while (q + 24 <= end) {
		const u64 *m = (const u64 *)q;
		u64 len = m[0], from = m[1], nfds = m[2], k;
		const u8 *d = q + 24 + nfds * 8;
		long src = fd;
		struct { u64 len; int level, type; int fds[253]; } cm;
		struct { const void *base; u64 len; } iov;
		struct { const void *name; u32 namelen; u32 pad; void *iov; u64 iovlen; void *control; u64 controllen; int flags; int pad2; } mh;
		if (nfds > 253)
			fail(c, EINVAL, r);
		for (k = 0; k < nfds; k++)
			cm.fds[k] = (int)(c->h->fd_base + m[3 + k]);
		cm.len = 16 + nfds * 4;
		cm.level = 1; /* SOL_SOCKET */
		cm.type = 1;  /* SCM_RIGHTS */
		to = 0;
		tolen = 0;
		if (from) {
			src = (long)(c->h->fd_base + from - 1);
			to = unix_addr(c, r, sa, &tolen);
		} else if (!connected) {
			to = unix_addr(c, r, sa, &tolen);
		}
		do {
			long w;
			iov.base = d;
			iov.len = len;
			mh.name = to;
			mh.namelen = (u32)tolen;
			mh.pad = 0;
			mh.iov = &iov;
			mh.iovlen = 1;
			mh.control = nfds ? &cm : 0;
			mh.controllen = nfds ? (cm.len + 7) & ~7ULL : 0;
			mh.flags = 0;
			mh.pad2 = 0;
			w = chk(c, S3(NR_sendmsg, src, &mh, 0x4000 /* MSG_NOSIGNAL */ | 0x40 /* MSG_DONTWAIT */), r);
			if (type != 1 && (u64)w != len)
				fail(c, EMSGSIZE, r);
			nfds = 0;
			d += w;
			len -= (u64)w;
		} while (len);
		q += 24 + m[2] * 8 + ((m[0] + 7) & ~7ULL);
	}
}

/*
 * Once every file of the tree exists (the descriptors in flight among them): what waited in
 * each unix socket's queue, sent again (a connected end's from its other end; a listener's
 * through its first waiting connection; a bound datagram socket's from each message's sender
 * or, for one without a name, a socket of the moment), then the shutdowns, which would have
 * stopped the sending.
 */
static void send_unix_queues(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i;
	long fd;

	for (i = 0; i < n; i++) {
		/* an end whose other end was closed: sent from the stand-in other end, then closed */
		int closed = f[i].kind == FILE_UNIX && f[i].sk_peer == i + 1;
		long from = (long)(c->h->fd_base + (closed ? n + i : f[i].sk_peer - 1));
		if (f[i].kind == FILE_UNIX && f[i].data_len)
			send_queue(c, from, 1, i, AT(c, f[i].data_off), f[i].data_len);
		if (closed)
			S1(NR_close, from);
	}
	for (i = 0; i < n; i++) {
		u64 t;
		if (f[i].kind != FILE_UNIX_BOUND || !f[i].sk_target)
			continue;
		t = f[i].sk_target - 1;
		/* a datagram socket's queue goes through an unnamed socket connected to it (messages
		   without a recorded sender came from an unnamed one: charged to it, as they were);
		   through a named one only those it recorded as its own, so it waits for the next loop */
		if (f[t].sk_queue_len && (f[t].value != 2 /* SOCK_DGRAM */ || !f[i].data_len)) {
			send_queue(c, (long)(c->h->fd_base + i), 1, t, AT(c, f[t].sk_queue_off), f[t].sk_queue_len);
			f[t].sk_queue_len = 0; /* sent (private copy of the plan) */
		}
	}
	for (i = 0; i < n; i++) {
		if (f[i].kind != FILE_UNIX_BOUND || !f[i].sk_queue_len)
			continue;
		if (f[i].value != 2 /* SOCK_DGRAM */ || !f[i].data_len)
			fail(c, EINVAL, i);
		fd = chk(c, IN_NET(c, &f[i], i, S3(NR_socket, 1, f[i].value | 04000, 0)), i);
		send_queue(c, fd, 0, i, AT(c, f[i].sk_queue_off), f[i].sk_queue_len);
		S1(NR_close, fd);
	}
	for (i = 0; i < n; i++) {
		fd = (long)(c->h->fd_base + i);
		if ((f[i].kind != FILE_UNIX && f[i].kind != FILE_UNIX_BOUND) || !f[i].sk_shutdown)
			continue;
		if (f[i].sk_shutdown & 2)
			chk(c, S2(NR_shutdown, fd, 1 /* SHUT_WR */), i);
		if (f[i].sk_shutdown & 1)
			chk(c, S2(NR_shutdown, fd, 0 /* SHUT_RD */), i);
	}
}

/* The root opens every file of the tree at fd_base + i; descendants inherit them. */
/* A pipe (or FIFO) made again through its write side w: its size, then the bytes it held. */
static void fill_pipe(struct ctx *c, long w, const struct plan_file *f, u64 detail)
{
	const u8 *d = AT(c, f->data_off);
	u64 left = f->data_len;
	if (f->pipe_size)
		chk(c, S3(NR_fcntl, w, F_SETPIPE_SZ, f->pipe_size), detail);
	while (left) {
		long n = chk(c, S3(NR_write, w, d, left), detail);
		d += n;
		left -= (u64)n;
	}
}

/* the plan index of the first end of kind `kind` of pipe f[i] (made before end k) */
static u64 first_end(const struct plan_file *f, u64 i, u64 k, u64 kind)
{
	for (; i < k; i++)
		if (f[i].kind == kind && f[i].pipe_id == f[k].pipe_id)
			break;
	return i;
}

/*
 * pidfds of processes that are gone (exited and reaped): each open file a pidfd of its own on a
 * process made for the purpose, which is then killed and reaped, the pidfds of one gone process
 * (pipe_id: its pidfs inode, as recorded) on one such process, so that they share an inode again.
 * The process has no exit signal (no SIGCHLD for the task); it exists before the tree's other
 * tasks, reaped at once, so its pid is free again for them.
 */
static void open_dead_pidfds(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i, k;
	for (i = 0; i < n; i++) {
		struct clone_args ca;
		int pfd = -1;
		long r;
		if (f[i].kind != FILE_PIDFD || (s64)f[i].value > 0 || f[i].data_len == ~0ULL)
			continue;
		memset(&ca, 0, sizeof(ca));
		ca.flags = CLONE_PIDFD;
		ca.pidfd = (u64)&pfd;
		r = chk(c, S2(NR_clone3, &ca, sizeof(ca)), i);
		if (r == 0)
			for (;;)
				S0(NR_pause);
		for (k = i; k < n; k++) {
			long fd;
			if (f[k].kind != FILE_PIDFD || (s64)f[k].value > 0 || (k != i && (!f[i].pipe_id || f[k].pipe_id != f[i].pipe_id)))
				continue;
			fd = chk(c, S2(NR_pidfd_open, r, f[k].flags & O_NONBLOCK), k);
			chk(c, S2(NR_dup2, fd, c->h->fd_base + k), k);
			S1(NR_close, fd);
			f[k].data_len = ~0ULL; /* private copy of the plan: mark done */
		}
		chk(c, S4(NR_pidfd_send_signal, pfd, SIGKILL, 0, 0), i);
		chk(c, S5(NR_waitid, 3 /* P_PIDFD */, pfd, 0, 4 /* WEXITED */ | 0x40000000 /* __WALL */, 0), i);
		S1(NR_close, pfd);
	}
}

/* An inotify instance with each watch under its recorded number: (wd, mask, path length, path
   padded to 8) */
static long make_inotify(struct ctx *c, const struct plan_file *f, u64 i)
{
	const u8 *d = AT(c, f->data_off), *end = d + f->data_len;
	long fd = chk(c, S1(NR_inotify_init1, f->flags & O_NONBLOCK), i);
	while (d + 24 <= end) {
		const u64 *w = (const u64 *)d;
		long wd;
		S3(NR_ioctl, fd, 0x40044900 /* INOTIFY_IOC_SETNEXTWD */, w[0]);
		wd = chk(c, S3(NR_inotify_add_watch, fd, d + 24, w[1]), i);
		if ((u64)wd != w[0])
			fail(c, EEXIST, i); /* the kernel gave another number (no SETNEXTWD) */
		d += 24 + ((w[2] + 7) & ~7ULL);
	}
	return fd;
}

void open_file_table(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i, k;

	/* what the launcher holds goes, but for the descriptors handed over by the caller
	   (--inherit-fd), which take their places first (fd_base is above every one of them) */
	for (i = 0; i < n; i++)
		if (f[i].kind == FILE_INHERIT)
			chk(c, S2(NR_dup2, f[i].value, c->h->fd_base + i), i);
		else if (f[i].kind == FILE_REG && f[i].value) /* a memfd's own open file, held for us (value: its descriptor + 1) */
			chk(c, S2(NR_dup2, f[i].value - 1, c->h->fd_base + i), i);
	/* the launcher's descriptors the tasks open as their own /proc/self/fd/N (held_base) */
	for (k = 0; k < c->h->nheld; k++)
		chk(c, S2(NR_dup2, ((u64 *)AT(c, c->h->held_off))[k], held_base(c) + k), k);
	chk(c, S3(NR_close_range, 0, c->h->fd_base - 1, 0), 0);
	if (n)
		chk(c, S3(NR_close_range, c->h->fd_base + n, held_base(c) - 1, 0), 0);
	chk(c, S3(NR_close_range, held_base(c) + c->h->nheld, ~0U, 0), 0);
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind != FILE_REG)
			continue;
		if (f[i].value) {
			/* the held open file, in place: its status flags and position as recorded */
			fd = (long)(c->h->fd_base + i);
			chk(c, S3(NR_fcntl, fd, F_SETFL, f[i].flags & ~(u64)O_ASYNC), i);
			chk(c, S3(NR_lseek, fd, f[i].pos, 0), i);
			continue;
		}
		/* O_ASYNC is set later with F_SETFL (restore_fown): open() keeps the flag but would not
		   turn signal-driven I/O on */
		fd = chk(c, xopen(STR(c, f[i].path), f[i].flags & ~(u64)O_ASYNC), i);
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
			/* a socket made on its own (IPv4/IPv6 TCP listeners and unconnected, UDP, UDP-lite,
			   ping and raw sockets; netlink; packet): options, bind (IP: address and port reuse
			   on while the task's sockets are made, which may share a port as they did when
			   bound, their own settings back once all are: inet_reuse_back), listen, connect
			   (sk_conn_*), then the options that need it bound */
			int one = 1, v, ip = f[i].sk_family == 2 || f[i].sk_family == 10;
			fd = chk(c, IN_NET(c, &f[i], i, inet_socket(c, &f[i])), i);
			if (ip) {
				chk(c, S5(NR_setsockopt, fd, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, &one, 4), i);
				chk(c, S5(NR_setsockopt, fd, 1, 15 /* SO_REUSEPORT */, &one, 4), i);
			}
			/* (a raw socket has its protocol for port from the start: its v6only is fixed) */
			if (f[i].sk_family == 10 && f[i].value != 3 /* SOCK_RAW */) {
				v = (f[i].sk_opts & 4) ? 1 : 0;
				chk(c, S5(NR_setsockopt, fd, 41 /* IPPROTO_IPV6 */, 26 /* IPV6_V6ONLY */, &v, 4), i);
			}
			set_sock_bufs(c, fd, &f[i], i);
			set_sock_opts(c, fd, &f[i], i);
			/* a TCP socket with no connection binds in repair mode, which may take an address in
			   use (the accepted end of a connection that ended, on its listener's port); leaving
			   repair mode clears address reuse: on again until inet_reuse_back sets the task's */
			if (f[i].data_len && (f[i].sk_opts & 8))
				chk(c, S5(NR_setsockopt, fd, 6 /* IPPROTO_TCP */, 19 /* TCP_REPAIR */, &one, 4), i);
			/* IP_FREEBIND on while binding (as CRIU 4.2 does for IPv6): the address may be one
			   the socket took with it set then cleared, or an IPv6 one still tentative; back
			   off after unless the task has it (sk_opts 16, set with the options above) */
			if (ip && f[i].data_len && f[i].value != 3 /* SOCK_RAW */)
				chk(c, S5(NR_setsockopt, fd, 0 /* SOL_IP */, 15 /* IP_FREEBIND */, &one, 4), i);
			if (f[i].data_len)
				chk(c, S3(NR_bind, fd, AT(c, f[i].data_off), f[i].data_len), i);
			if (ip && f[i].data_len && f[i].value != 3 && !(f[i].sk_opts & 16)) {
				v = 0;
				chk(c, S5(NR_setsockopt, fd, 0, 15, &v, 4), i);
			}
			if (f[i].data_len && (f[i].sk_opts & 8)) {
				v = 0;
				chk(c, S5(NR_setsockopt, fd, 6, 19, &v, 4), i);
				chk(c, S5(NR_setsockopt, fd, 1, 2 /* SO_REUSEADDR */, &one, 4), i);
			}
			if (f[i].sk_listen)
				chk(c, S2(NR_listen, fd, f[i].sk_backlog), i);
			if (f[i].sk_conn_len) {
				/* a unix socket connects to a path name of the tree's (--ext-unix-sk) */
				const u8 *to = AT(c, f[i].sk_conn_off);
				long root = f[i].sk_family == 1 && f[i].sk_conn_len > 2 && to[2] ? into_root(c, i) : -1;
				long r = S3(NR_connect, fd, to, f[i].sk_conn_len);
				out_of_root(c, root, i);
				chk(c, r, i);
			}
			set_sock_opts_late(c, fd, &f[i], i);
			/* a UDP socket shut down: RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 → SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2 */
			if (f[i].sk_shutdown) {
				long r = S2(NR_shutdown, fd, f[i].sk_shutdown - 1);
				if (r != -107) /* ENOTCONN: not connected, the bits are set all the same */
					chk(c, r, i);
			}
			if (f[i].flags & O_NONBLOCK)
				chk(c, S3(NR_fcntl, fd, F_SETFL, O_NONBLOCK), i);
		} else if (f[i].kind == FILE_UNIX_BOUND) {
			/* a unix socket on its own: bind to its name, listen; one without a name (made,
			   never bound nor connected) only exists. One connected to another of the tree
			   (sk_target) is made once every listener has its accepted connections back. */
			if (f[i].sk_target)
				continue;
			fd = chk(c, IN_NET(c, &f[i], i, S3(NR_socket, 1 /* AF_UNIX */, f[i].value, 0)), i);
			set_sock_bufs(c, fd, &f[i], i);
			set_sock_opts(c, fd, &f[i], i);
			unix_bind(c, fd, &f[i], i, n);
			if (f[i].sk_listen)
				unix_listen(c, fd, f[i].sk_backlog, i);
			if (f[i].flags & O_NONBLOCK)
				chk(c, S3(NR_fcntl, fd, F_SETFL, O_NONBLOCK), i);
		} else if (f[i].kind == FILE_INOTIFY) {
			fd = make_inotify(c, &f[i], i);
		} else if (f[i].kind == FILE_FANOTIFY) {
			/* fanotify_init(faflags, evflags) (value: evflags << 32 | faflags), then each mark:
			   (fanotify_mark flags, mask, path length, path padded to 8) */
			const u8 *d = AT(c, f[i].data_off), *end = d + f[i].data_len;
			fd = chk(c, S2(NR_fanotify_init, f[i].value & 0xffffffffULL, f[i].value >> 32), i);
			while (d + 24 <= end) {
				const u64 *m = (const u64 *)d;
				chk(c, S5(NR_fanotify_mark, fd, m[0], m[1], AT_FDCWD, d + 24), i);
				d += 24 + ((m[2] + 7) & ~7ULL);
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
	inet_reuse_back(c);
	/* connected unix sockets whose ends are both in the tree: a socketpair, or (one end reporting
	   the name of a listener, sk_target) connected to that listener and accepted from it, so the
	   accepted end keeps the listener's name; buffer sizes first, then each end's queued
	   messages sent from the other end (non-blocking: a queue that no longer fits fails instead
	   of hanging) */
	for (i = 0; i < n; i++) {
		int sv[2];
		u64 e[2], k;
		if (f[i].kind != FILE_UNIX || !f[i].sk_peer || f[i].sk_peer - 1 < i)
			continue; /* a pair is made with its first end */
		e[0] = i;
		e[1] = f[i].sk_peer - 1;
		if (e[1] == i) {
			/* its other end was closed: a socketpair whose other end (kept at fd_base + n + i
			   meanwhile) sends the queue once every file exists and goes, which shuts this
			   end down both ways as the kernel did (send_unix_queues) */
			chk(c, IN_NET(c, &f[i], i, S4(NR_socketpair, 1 /* AF_UNIX */, f[i].value | 04000 /* SOCK_NONBLOCK */, 0, sv)), i);
			set_sock_bufs(c, sv[0], &f[i], i);
			set_sock_opts(c, sv[0], &f[i], i);
			chk(c, S2(NR_dup2, sv[1], c->h->fd_base + n + i), i);
			S1(NR_close, sv[1]);
			chk(c, S3(NR_fcntl, sv[0], F_SETFL, f[i].flags & O_NONBLOCK), i);
			chk(c, S2(NR_dup2, sv[0], c->h->fd_base + i), i);
			S1(NR_close, sv[0]);
			continue;
		}
		if (e[1] >= n || f[e[1]].kind != FILE_UNIX || f[e[1]].sk_peer != i + 1)
			fail(c, EINVAL, i);
		if (f[e[0]].sk_target || f[e[1]].sk_target) {
			/* sv[s] the accepted end, sv[1 - s] the one that connects */
			u64 s = f[e[0]].sk_target ? 0 : 1, l = f[e[s]].sk_target - 1;
			sv[1 - s] = (int)chk(c, IN_NET(c, &f[e[1 - s]], e[1 - s], S3(NR_socket, 1, f[i].value | 04000 /* SOCK_NONBLOCK */, 0)), e[1 - s]);
			set_sock_bufs(c, sv[1 - s], &f[e[1 - s]], e[1 - s]);
			set_sock_opts(c, sv[1 - s], &f[e[1 - s]], e[1 - s]);
			unix_connect(c, sv[1 - s], l, e[1 - s], n);
			sv[s] = (int)chk(c, S4(NR_accept4, c->h->fd_base + l, 0, 0, 04000 /* SOCK_NONBLOCK */), e[s]);
			set_sock_bufs(c, sv[s], &f[e[s]], e[s]);
			set_sock_opts(c, sv[s], &f[e[s]], e[s]);
		} else {
			chk(c, IN_NET(c, &f[i], i, S4(NR_socketpair, 1 /* AF_UNIX */, f[i].value | 04000 /* SOCK_NONBLOCK */, 0, sv)), i);
			for (k = 0; k < 2; k++) {
				set_sock_bufs(c, sv[k], &f[e[k]], e[k]);
				set_sock_opts(c, sv[k], &f[e[k]], e[k]);
			}
		}
		for (k = 0; k < 2; k++) {
			struct plan_file *x = &f[e[k]];
			unix_name_end(c, sv[k], x, e[k]);
			chk(c, S3(NR_fcntl, sv[k], F_SETFL, x->flags & O_NONBLOCK), e[k]);
			chk(c, S2(NR_dup2, sv[k], c->h->fd_base + e[k]), e[k]);
			S1(NR_close, sv[k]);
		}
	}
	/* unix sockets connected to a listener (not accepted yet: they wait in its queue, in plan
	   order) or to a bound datagram socket; the first one connected to a socket sends what
	   waits in that socket's queue */
	for (i = 0; i < n; i++) {
		long fd;
		u64 t;
		if (f[i].kind != FILE_UNIX_BOUND || !f[i].sk_target)
			continue;
		t = f[i].sk_target - 1;
		fd = chk(c, IN_NET(c, &f[i], i, S3(NR_socket, 1, f[i].value | 04000 /* SOCK_NONBLOCK */, 0)), i);
		set_sock_bufs(c, fd, &f[i], i);
		set_sock_opts(c, fd, &f[i], i);
		unix_bind(c, fd, &f[i], i, n);
		unix_connect(c, fd, t, i, n);
		chk(c, S3(NR_fcntl, fd, F_SETFL, f[i].flags & O_NONBLOCK), i);
		if ((u64)fd != c->h->fd_base + i) {
			chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
			S1(NR_close, fd);
		}
	}
	/* pty pairs */
	open_ttys(c);
	/* pipes: each files.img entry of a pipe is an open file description of its own (descriptors
	   that shared one share one plan file), so the first read and the first write end take the
	   pipe's own two, and every further end is a new description opened through
	   /proc/self/fd, as the task made it; each gets its own O_NONBLOCK (O_ASYNC comes with its owner,
	   restore_fown) */
	for (i = 0; i < n; i++) {
		int p[2];
		if (f[i].kind != FILE_PIPE_R && f[i].kind != FILE_PIPE_W)
			continue;
		if (f[i].data_len == ~0ULL) /* already made with an earlier end */
			continue;
		chk(c, S2(NR_pipe2, p, 0), i);
		fill_pipe(c, p[1], &f[i], i);
		for (k = i; k < n; k++) {
			long src, dst = (long)(c->h->fd_base + k);
			int end;
			if ((f[k].kind != FILE_PIPE_R && f[k].kind != FILE_PIPE_W) || f[k].pipe_id != f[i].pipe_id)
				continue;
			end = f[k].kind == FILE_PIPE_R ? 0 : 1;
			if (p[end] >= 0) {
				src = p[end];
				p[end] = -1;
			} else {
				char path[40];
				proc_fd_path(path, (long)(c->h->fd_base + first_end(f, i, k, f[k].kind)));
				src = chk(c, xopen(path, (u64)(end ? O_WRONLY : O_RDONLY) | O_NONBLOCK), k);
			}
			chk(c, S2(NR_dup2, src, dst), k);
			if (src != dst)
				S1(NR_close, src);
			chk(c, S3(NR_fcntl, dst, F_SETFL, f[k].flags & O_NONBLOCK), k);
			if (k != i)
				f[k].data_len = ~0ULL; /* private copy of the plan: mark done */
		}
		if (p[0] >= 0)
			S1(NR_close, p[0]);
		if (p[1] >= 0)
			S1(NR_close, p[1]);
	}
	/* FIFOs, by path: a read-write open of our own first, so that the recorded open (read-only
	   or write-only) finds its other side and does not wait; through it the pipe's size and what
	   it held, once per FIFO; it goes once the recorded open holds the FIFO */
	for (i = 0; i < n; i++) {
		long fake, fd;
		if (f[i].kind != FILE_FIFO)
			continue;
		fake = chk(c, xopen(STR(c, f[i].path), O_RDWR | O_NONBLOCK), i);
		if (f[i].data_len != ~0ULL) {
			fill_pipe(c, fake, &f[i], i);
			for (k = i + 1; k < n; k++)
				if (f[k].kind == FILE_FIFO && f[k].pipe_id == f[i].pipe_id)
					f[k].data_len = ~0ULL; /* private copy of the plan: the data is in */
		}
		fd = chk(c, xopen(STR(c, f[i].path), f[i].flags & ~(u64)O_ASYNC), i);
		if ((u64)fd != c->h->fd_base + i) {
			chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
			S1(NR_close, fd);
		}
		S1(NR_close, fake);
	}
	open_dead_pidfds(c);
	send_unix_queues(c);
	/* the descriptors kept on unlinked socket files */
	if (n)
		S3(NR_close_range, c->h->fd_base + n, held_base(c) - 1, 0);
}

/* an epoll's owner with targets opened late still to add (restore_late_files): owner | this bit */
#define OWNER_LATE_TARGETS (1ULL << 63)

/* Is descriptor n of this task one on a file opened late (restore_late_files)? */
static int late_fd(struct ctx *c, u64 n)
{
	const struct plan_file *files = AT(c, c->h->files_off);
	const struct plan_fd *fd = AT(c, c->t->fds_off);
	u64 i;
	for (i = 0; i < c->t->nfds; i++)
		if (fd[i].fd == n)
			return files[fd[i].file].kind == FILE_LATE;
	return 0;
}

void restore_fds(struct ctx *c)
{
	struct plan_fd *fd = AT(c, c->t->fds_off);
	u64 i;
	struct plan_file *files = AT(c, c->h->files_off);
	for (i = 0; i < c->t->nfds; i++) {
		/* a pidfd of a process of the tree is opened once every process of the tree exists
		   (restore_pidfds); one of a process gone is in the table (open_dead_pidfds); so is a
		   file opened late (restore_late_files) */
		if (files[fd[i].file].kind == FILE_PIDFD && (s64)files[fd[i].file].value > 0)
			continue;
		if (files[fd[i].file].kind == FILE_LATE)
			continue;
		if (files[fd[i].file].kind == FILE_TTY && (files[fd[i].file].tty_bits & TTY_DEVTTY)) {
			/* /dev/tty: opened by this task at its first descriptor on it, the others dup'ed */
			u64 k;
			for (k = 0; k < i && fd[k].file != fd[i].file; k++)
				;
			if (k < i)
				chk(c, S2(NR_dup2, fd[k].fd, fd[i].fd), fd[i].fd);
			else
				open_dev_tty(c, &files[fd[i].file], fd[i].fd);
			if (fd[i].flags)
				chk(c, S3(NR_fcntl, fd[i].fd, F_SETFD, fd[i].flags), fd[i].fd);
			continue;
		}
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
		u64 k, late = 0;
		if (f->kind != FILE_EPOLL || f->owner != c->t->pid)
			continue;
		for (k = 0; k + 24 <= f->data_len; k += 24, t += 3) {
			struct { u32 events; u64 data; } __attribute__((packed)) ev = { (u32)t[1], t[2] };
			/* (a target opened late is added once it is: add_late_targets) */
			if (late_fd(c, t[0])) {
				late = 1;
				continue;
			}
			chk(c, S4(NR_epoll_ctl, fd[i].fd, 1 /* EPOLL_CTL_ADD */, t[0], &ev), t[0]);
		}
		/* once, even if the task holds it at several descriptors */
		f->owner = late ? c->t->pid | OWNER_LATE_TARGETS : 0;
	}
	set_step(c, STEP_FDS);
	if (c->h->nfiles)
		chk(c, S3(NR_close_range, c->h->fd_base, c->h->fd_base + c->h->nfiles - 1, 0), 0);
	if (c->h->nheld)
		chk(c, S3(NR_close_range, held_base(c), held_base(c) + c->h->nheld - 1, 0), 0);
}

/* file locks and leases, taken again without waiting: another holder now is a failure, as in CRIU */
struct lease_arg {
	long fd, type;
};

static long lease_as(struct ctx *c, void *p)
{
	struct lease_arg *a = p;
	return S3(NR_fcntl, a->fd, 1024 /* F_SETLEASE */, a->type);
}

/* A lease is taken by the file's owner (fs uid) or with CAP_LEASE, which counts in the initial
   user namespace only: in a tree of a user namespace of its own the task has criu's ids, maybe
   unmapped there, and none of criu's capabilities, so a thread of the task takes the file's
   owner as its fs uid for the call (as_ids); the lease belongs to the open file, not the thread */
static long set_lease(struct ctx *c, long fd, long type)
{
	struct lease_arg a = { fd, type };
	struct as_ids ids = { -1, -1, -1, -1, -1, -1 };
	u64 st[18];
	if (!c->h->spare_tid)
		return lease_as(c, &a);
	chk(c, S2(NR_fstat, fd, st), (u64)fd);
	ids.fsuid = (long)(st[3] >> 32); /* st_uid, after the u32 st_mode */
	return as_ids(c, &ids, lease_as, &a);
}

void restore_locks(struct ctx *c)
{
	const u64 *l = AT(c, c->t->locks_off);
	u64 i;

	set_step(c, STEP_LOCKS);
	for (i = 0; i < c->t->nlocks; i++, l += 5) {
		struct { short type, whence; int pad; s64 start, len; int pid, pad2; } fl = { (short)l[2], 0 /* SEEK_SET */, 0, (s64)l[3], (s64)l[4], 0, 0 };
		if (l[1] == 8) /* a lease: F_SETLEASE with F_RDLCK / F_WRLCK (its holder is the caller) */
			chk(c, set_lease(c, (long)l[0], l[2] == 1 ? 1 /* F_WRLCK */ : 0 /* F_RDLCK */), l[0]);
		else if (l[1] == 2)
			chk(c, S2(NR_flock, l[0], (l[2] == 1 ? 2 /* LOCK_EX */ : 1 /* LOCK_SH */) | 4 /* LOCK_NB */), l[0]);
		else
			chk(c, S3(NR_fcntl, l[0], l[1] == 4 ? 37 /* F_OFD_SETLK */ : 6 /* F_SETLK */, &fl), l[0]);
	}
}

/* Every task has made all its threads: one more in the status area's count. */
void task_formed(struct ctx *c)
{
	volatile u32 *formed = (volatile u32 *)(c->h->status_addr + STATUS_FORMED_OFF);
	__atomic_add_fetch(formed, 1, __ATOMIC_SEQ_CST);
	S3(NR_futex, formed, FUTEX_WAKE, 0x7fffffff);
}

/* Until every task of the tree (zombies aside, which never count) has made its threads. */
void wait_formed(struct ctx *c)
{
	volatile u32 *formed = (volatile u32 *)(c->h->status_addr + STATUS_FORMED_OFF);
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	u32 want = 0, n;
	u64 i;
	for (i = 0; i < c->h->ntasks; i++)
		if (!tasks[i].zombie)
			want++;
	while ((n = __atomic_load_n(formed, __ATOMIC_SEQ_CST)) < want)
		if (wait_change(c, formed, n))
			fail(c, ETIMEDOUT, n);
}

/*
 * The I/O signal settings of the open files this task is the first holder of (fown_task), at
 * its first descriptor on each: the signal (F_SETSIG), the owner (F_SETOWN_EX: a thread, process
 * or process group of the tree, so only once every task has made its threads), O_ASYNC (F_SETFL,
 * which turns signal-driven I/O on). The kernel records the caller's real and effective uid with
 * the owner: the task takes the recorded ones for that call (the saved uid keeps its privilege
 * to come back), before it takes its own credentials. A uid change resets dumpability: set again.
 */
struct owner_arg {
	long fd;
	void *own;
};

static long owner_as(struct ctx *c, void *p)
{
	struct owner_arg *a = p;
	return S3(NR_fcntl, a->fd, F_SETOWN_EX, a->own);
}

void restore_fown(struct ctx *c)
{
	struct plan_file *files = AT(c, c->h->files_off);
	struct plan_fd *fd = AT(c, c->t->fds_off);
	int formed = 0;
	u64 i;

	set_step(c, STEP_FOWN);
	for (i = 0; i < c->t->nfds; i++) {
		struct plan_file *f = &files[fd[i].file];
		long n = (long)fd[i].fd;
		if (f->fown_task != c->t->pid)
			continue;
		f->fown_task = 0; /* once, even if the task holds it at several descriptors */
		if (f->fown_signum)
			chk(c, S3(NR_fcntl, n, F_SETSIG, f->fown_signum), n);
		if (f->fown_pid) {
			u32 r = 0, e = 0, s = 0;
			struct { int type, pid; } own = { (int)f->fown_type, (int)f->fown_pid };
			long ret;
			if (!formed) {
				wait_formed(c);
				formed = 1;
			}
			if (c->h->spare_tid) {
				/* criu's ids may be unmapped in the tree's user namespace: see unix_listen */
				struct as_ids ids = { (long)f->fown_uid, (long)f->fown_euid, -1, -1, -1, -1 };
				struct owner_arg a = { n, &own };
				chk(c, as_ids(c, &ids, owner_as, &a), n);
			} else {
				chk(c, S3(NR_getresuid, &r, &e, &s), n);
				chk(c, S3(NR_setresuid, f->fown_uid, f->fown_euid, -1), n);
				ret = S3(NR_fcntl, n, F_SETOWN_EX, &own);
				chk(c, S3(NR_setresuid, r, e, -1), n);
				chk(c, ret, n);
				restore_dumpable(c, n);
			}
		}
		if (f->flags & O_ASYNC) {
			long fl = chk(c, S2(NR_fcntl, n, F_GETFL), n);
			chk(c, S3(NR_fcntl, n, F_SETFL, fl | O_ASYNC), n);
		}
	}
}

/* The task's pidfds of processes of the tree, once every task of the tree has made its threads:
   on the process each names (a pid of the tree, zombies included). Descriptors of the task on
   one open file share it. (A pidfd of a process gone came with the file table.) */
void restore_pidfds(struct ctx *c)
{
	struct plan_file *files = AT(c, c->h->files_off);
	struct plan_fd *fd = AT(c, c->t->fds_off);
	int formed = 0;
	u64 i, k;

	set_step(c, STEP_PIDFDS);
	for (i = 0; i < c->t->nfds; i++) {
		struct plan_file *f = &files[fd[i].file];
		long pfd = -1;
		if (f->kind != FILE_PIDFD || (s64)f->value <= 0)
			continue;
		for (k = 0; k < i && pfd < 0; k++)
			if (fd[k].file == fd[i].file)
				pfd = chk(c, S2(NR_dup2, fd[k].fd, fd[i].fd), fd[i].fd);
		if (pfd < 0) {
			if (!formed) {
				wait_formed(c);
				formed = 1;
			}
			pfd = chk(c, S2(NR_pidfd_open, f->value, f->flags & O_NONBLOCK), fd[i].fd);
			if (pfd != (long)fd[i].fd) {
				chk(c, S2(NR_dup2, pfd, fd[i].fd), fd[i].fd);
				S1(NR_close, pfd);
			}
		}
		chk(c, S3(NR_fcntl, fd[i].fd, F_SETFD, fd[i].flags), fd[i].fd);
	}
}

/* Does this task hold a descriptor on a file opened late? */
static int holds_late(struct ctx *c, const struct plan_task *t)
{
	const struct plan_file *files = AT(c, c->h->files_off);
	const struct plan_fd *fd = AT(c, t->fds_off);
	u64 i;
	for (i = 0; i < t->nfds; i++)
		if (files[fd[i].file].kind == FILE_LATE)
			return 1;
	return 0;
}

/* The task's descriptors on files opened late, at their recorded numbers with their recorded
   descriptor flags: the root's own at fd_base + the file's index, another task's copies of
   those taken through pidfd `pfd` on the root (-1: this is the root). */
static void place_late(struct ctx *c, long pfd)
{
	const struct plan_file *files = AT(c, c->h->files_off);
	const struct plan_fd *fd = AT(c, c->t->fds_off);
	u64 i;
	for (i = 0; i < c->t->nfds; i++) {
		long got;
		if (files[fd[i].file].kind != FILE_LATE)
			continue;
		got = (long)(c->h->fd_base + fd[i].file);
		/* another task: a copy of the root's descriptor (the same open file) */
		if (pfd >= 0)
			got = chk(c, S3(NR_pidfd_getfd, pfd, got, 0), fd[i].fd);
		if (got != (long)fd[i].fd)
			chk(c, S2(NR_dup2, got, fd[i].fd), fd[i].fd);
		if (pfd >= 0 && got != (long)fd[i].fd)
			S1(NR_close, got);
		chk(c, S3(NR_fcntl, fd[i].fd, F_SETFD, fd[i].flags), fd[i].fd);
	}
}

/* The targets opened late of the epolls this task owns, once they are open (restore_fds added the others). */
static void add_late_targets(struct ctx *c)
{
	struct plan_file *files = AT(c, c->h->files_off);
	const struct plan_fd *fd = AT(c, c->t->fds_off);
	u64 i, k;
	set_step(c, STEP_EPOLL);
	for (i = 0; i < c->t->nfds; i++) {
		struct plan_file *f = &files[fd[i].file];
		const u64 *t = AT(c, f->data_off);
		if (f->kind != FILE_EPOLL || f->owner != (c->t->pid | OWNER_LATE_TARGETS))
			continue;
		for (k = 0; k + 24 <= f->data_len; k += 24, t += 3) {
			struct { u32 events; u64 data; } __attribute__((packed)) ev = { (u32)t[1], t[2] };
			if (late_fd(c, t[0]))
				chk(c, S4(NR_epoll_ctl, fd[i].fd, 1 /* EPOLL_CTL_ADD */, t[0], &ev), t[0]);
		}
		f->owner = 0;
	}
	set_step(c, STEP_LATE);
}

/*
 * Files opened by their path only once every task of the tree exists with its pid (a file under
 * /proc/PID/ of a task other than the root, a namespace's file /proc/PID/ns/X, a file of a
 * nested mount namespace, an inotify instance watching one: LATE_INOTIFY): once every task
 * has made its threads, the root opens each at fd_base + its index (flags and position as
 * recorded; O_ASYNC later, restore_fown) and says so in the status area; every other task that
 * holds one (with a descriptor table of its own) takes copies of the root's descriptors
 * (pidfd_getfd: one open file however many tasks hold it) and counts itself done; the root then
 * closes its own; each adds the targets of its epolls that are such files. A table shared with
 * the parent is the parent's (its first holder places them).
 */
void restore_late_files(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	volatile u32 *opened = (volatile u32 *)(c->h->status_addr + STATUS_LATE_OFF);
	volatile u32 *taken = (volatile u32 *)(c->h->status_addr + STATUS_LATE_TAKEN_OFF);
	u64 n = c->h->nfiles, i, root = 0;
	u32 want = 0, k;
	long pfd, fd;

	set_step(c, STEP_LATE);
	for (i = 0; i < n && f[i].kind != FILE_LATE; i++)
		;
	if (i == n)
		return;
	while (root < c->h->ntasks && tasks[root].parent != NO_PARENT)
		root++;
	if (c->t->parent != NO_PARENT) {
		if (c->t->share_files || !holds_late(c, c->t))
			return;
		if (wait_change(c, opened, 0))
			fail(c, ETIMEDOUT, 0);
		/* the pidfd above every recorded descriptor (fd_base: none of the task's is there any
		   more): at the lowest free number it could be one that place_late puts a file at,
		   which closing the pidfd would then take away */
		fd = chk(c, S2(NR_pidfd_open, tasks[root].pid, 0), tasks[root].pid);
		pfd = chk(c, S3(NR_fcntl, fd, F_DUPFD_CLOEXEC, c->h->fd_base), tasks[root].pid);
		S1(NR_close, fd);
		place_late(c, pfd);
		S1(NR_close, pfd);
		add_late_targets(c);
		__atomic_add_fetch(taken, 1, __ATOMIC_SEQ_CST);
		S3(NR_futex, taken, FUTEX_WAKE, 0x7fffffff);
		return;
	}
	wait_formed(c);
	for (i = 0; i < n; i++) {
		if (f[i].kind != FILE_LATE)
			continue;
		/* (an inotify instance watching a file of a nested mount namespace: made now, its
		   watches' paths through a task living there) */
		if (f[i].value == LATE_INOTIFY)
			fd = make_inotify(c, &f[i], i);
		else
			fd = chk(c, xopen(STR(c, f[i].path), f[i].flags & ~(u64)O_ASYNC), i);
		if (f[i].pos)
			chk(c, S3(NR_lseek, fd, f[i].pos, 0), i);
		if ((u64)fd != c->h->fd_base + i) {
			chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
			S1(NR_close, fd);
		}
	}
	__atomic_store_n(opened, 1, __ATOMIC_SEQ_CST);
	S3(NR_futex, opened, FUTEX_WAKE, 0x7fffffff);
	place_late(c, -1);
	add_late_targets(c);
	for (i = 0; i < c->h->ntasks; i++)
		if (i != root && !tasks[i].zombie && !tasks[i].share_files && holds_late(c, &tasks[i]))
			want++;
	while ((k = __atomic_load_n(taken, __ATOMIC_SEQ_CST)) < want)
		if (wait_change(c, taken, k))
			fail(c, ETIMEDOUT, k);
	for (i = 0; i < n; i++)
		if (f[i].kind == FILE_LATE)
			S1(NR_close, c->h->fd_base + i);
}
