/*
 * crtools restorer blob: terminals. The root makes every pty pair of the tree (open_ttys, from
 * open_file_table), and the slaves that were hung up (their master closed: made through a master
 * of their own, closed once they are open), opens the console and virtual consoles by path and
 * sets the recorded settings on them and on the terminals handed over (--inherit-fd, in place
 * already); a session leader takes its controlling terminal back
 * right after setsid (restore_ctty) and, once every task has made its threads (so every process
 * group exists), gives it its foreground group (restore_ctty_pgrp).
 */
#include "blob.h"

#define O_NOCTTY 0400
#ifndef EBUSY
#define EBUSY 16
#endif
#define NR_fchown 93
#define TCSETS 0x5402
#define TIOCEXCL 0x540C
#define TIOCSCTTY 0x540E
#define TIOCSPGRP 0x5410
#define TIOCSWINSZ 0x5414
#define TIOCPKT 0x5420
#define TIOCSLCKTRMIOS 0x5457
#define TIOCGLCKTRMIOS 0x5456
#define TIOCGPTN 0x80045430
#define TIOCINQ 0x541B
#define TIOCSPTLCK 0x40045431

/* data: termios (36 bytes, at 0), locked termios (at 40), window size (at 80); a master's then the
   bytes queued (tty-data): u32 for the slave to read, u32 for the master to read, those bytes */
#define TTY_TERMIOS 0
#define TTY_TERMIOS_LOCKED 40
#define TTY_WINSIZE 80
#define TTY_QUEUED 88
/* struct termios: the flags' offsets, c_cc's (VTIME, VMIN) */
#define TERMIOS_IFLAG 0
#define TERMIOS_OFLAG 4
#define TERMIOS_LFLAG 12
#define TERMIOS_VTIME 22
#define TERMIOS_VMIN 23
#define TERMIOS_CC 17
/* c_lflag bits (x86_64), c_iflag's IXON, c_cc indices */
#define L_ICANON 0x2
#define L_ECHO 0x8
#define L_IEXTEN 0x8000
#define L_EXTPROC 0x10000
#define I_IXON 0x400
#define VEOF 4
#define VLNEXT 15

/* "<root>/dev/pts/N" into buf (size bytes; root: the tree's new root under --root, else ""), or 0
   when it does not fit */
static const char *pts_path(char *buf, u64 size, const char *root, u64 index)
{
	static const char pre[] = "/dev/pts/";
	char dig[20];
	u64 k = 0, m = 0, j;
	for (j = 0; root[j]; j++)
		if (m < size)
			buf[m++] = root[j];
	for (j = 0; pre[j]; j++)
		if (m < size)
			buf[m++] = pre[j];
	do
		dig[k++] = (char)('0' + index % 10);
	while ((index /= 10));
	if (m + k >= size)
		return 0;
	while (k)
		buf[m++] = dig[--k];
	buf[m] = 0;
	return buf;
}

/*
 * A master (opened at path, with flags) with index `index`: the kernel hands out the lowest free
 * index, so open until it comes (at most 32 at once, as CRIU does), keeping the others open
 * meanwhile.
 */
static long open_ptmx_index(struct ctx *c, const char *path, u64 flags, u64 index, u64 i)
{
	long held[32], fd = -1;
	u64 k, n = 0;
	for (k = 0; k < 32; k++) {
		int idx = -1;
		long o = chk(c, xopen(path, (flags & ~(u64)O_ASYNC) | O_NOCTTY), i);
		chk(c, S3(NR_ioctl, o, TIOCGPTN, &idx), i);
		if ((u64)idx == index) {
			fd = o;
			break;
		}
		held[n++] = o;
		if ((u64)idx > index || index - (u64)idx >= 32)
			break;
	}
	for (k = 0; k < n; k++)
		S1(NR_close, held[k]);
	if (fd < 0)
		fail(c, EBUSY, i); /* the index is taken */
	return fd;
}

/* A terminal given its recorded owner. In a tree of a user namespace of its own the task's
   capabilities there cover no file whose owner or group is unmapped (devpts may give a slave a
   group of criu's): a thread of the task (as_ids) changes it as its owner, a member of the group. */
struct chown_arg {
	long fd;
	u64 uid, gid;
};

static long chown_as(struct ctx *c, void *p)
{
	struct chown_arg *a = p;
	return S3(NR_fchown, a->fd, a->uid, a->gid);
}

static void tty_chown(struct ctx *c, long fd, const struct plan_file *f, u64 i)
{
	struct chown_arg a = { fd, f->tty_uid, f->tty_gid };
	struct as_ids ids = { -1, -1, (long)f->tty_uid, -1, (long)f->tty_gid, (long)f->tty_gid };
	if (!c->h->spare_tid)
		chk(c, chown_as(c, &a), i);
	else
		chk(c, as_ids(c, &ids, chown_as, &a), i);
}

#define UNMAPPED 0xffffffffULL

/* A master at pty `index` (open_ptmx_index), whose slave devpts makes with the caller's fs ids:
   in a tree of a user namespace of its own, opened as the pty's recorded owner by a thread of
   the task (as_ids), for a slave criu's ids made (unmapped there, maybe) could not be given its
   owner by the task */
struct ptmx_arg {
	const char *path;
	u64 flags, index, i;
	long fd;
};

static long ptmx_as(struct ctx *c, void *p)
{
	struct ptmx_arg *a = p;
	a->fd = open_ptmx_index(c, a->path, a->flags, a->index, a->i);
	return 0;
}

static long open_ptmx_owned(struct ctx *c, const char *path, u64 flags, const struct plan_file *f, u64 i)
{
	struct plan_file *all = AT(c, c->h->files_off);
	struct ptmx_arg a = { path, flags, f->tty_index, i, -1 };
	struct as_ids ids = { -1, -1, -1, -1, -1, -1 };
	const struct plan_file *owner = f;
	char via[40];
	long at;
	u64 k;
	if (!c->h->spare_tid)
		return open_ptmx_index(c, path, flags, f->tty_index, i);
	/* the slave's owner where the tree holds the slave (a master's own record may carry the
	   ptmx node's, which the namespace may not map: then criu's ids make it) */
	for (k = 0; k < c->h->nfiles; k++)
		if (all[k].kind == FILE_TTY && !(all[k].tty_bits & (TTY_MASTER | TTY_DEVTTY | TTY_SIMPLE | TTY_EXT)) &&
		    all[k].tty_index == f->tty_index) {
			owner = &all[k];
			break;
		}
	if (owner->tty_uid != UNMAPPED)
		ids.fsuid = (long)owner->tty_uid;
	if (owner->tty_gid != UNMAPPED)
		ids.fsgid = (long)owner->tty_gid;
	/* the path is looked up with criu's ids (it may pass through the restore's own directories,
	   criu's alone), the thread opens what it found through /proc/self/fd */
	at = chk(c, S4(NR_openat, AT_FDCWD, path, 010000000 /* O_PATH */, 0), i);
	proc_fd_path(via, at);
	a.path = via;
	chk(c, as_ids(c, &ids, ptmx_as, &a), i);
	S1(NR_close, at);
	return a.fd;
}

/* The terminal's locked termios (36 bytes, the kernel's struct termios): setting them needs
   CAP_SYS_ADMIN in the initial user namespace, which the tasks of a tree in a user namespace of
   its own do not have; locks that are already what they must be (a new pty's: none) are left
   alone, others set (failing there with EPERM, by name) */
static void set_locked(struct ctx *c, long fd, const u8 *want, u64 i)
{
	u8 now[36];
	u64 k;
	if (S3(NR_ioctl, fd, TIOCGLCKTRMIOS, now) == 0) {
		for (k = 0; k < sizeof(now) && now[k] == want[k]; k++)
			;
		if (k == sizeof(now))
			return;
	}
	chk(c, S3(NR_ioctl, fd, TIOCSLCKTRMIOS, want), i);
}

static void to_slot(struct ctx *c, long fd, u64 i)
{
	if ((u64)fd != c->h->fd_base + i) {
		chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
		S1(NR_close, fd);
	}
}

static u32 get_u32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* the bytes queued at a master: for the slave to read, for the master to read */
static u32 queued(const struct plan_file *f, const u8 *d, int for_master)
{
	if (!(f->tty_bits & TTY_MASTER) || f->data_len < TTY_QUEUED + 8)
		return 0;
	return get_u32(d + TTY_QUEUED + (for_master ? 4 : 0));
}

static void write_all(struct ctx *c, long fd, const u8 *p, u32 n, u64 i)
{
	while (n) {
		long r = S3(NR_write, fd, p, n);
		if (r == -EINTR)
			continue;
		if (r == 0)
			fail(c, 5 /* EIO */, i);
		chk(c, r, i);
		p += r;
		n -= (u32)r;
	}
}

/* wait (at most 2 s) until TIOCINQ at fd counts n bytes: a write to the other end has gone through
   the kernel's worker into this end's line discipline */
static void wait_queued(struct ctx *c, long fd, u32 n, u64 i)
{
	struct timespec64 ms = { 0, 1000000 };
	u64 k;
	for (k = 0; k < 2000; k++) {
		int have = 0;
		chk(c, S3(NR_ioctl, fd, TIOCINQ, &have), i);
		if ((u32)have == n)
			return;
		S2(NR_nanosleep, &ms, 0);
	}
	fail(c, ETIMEDOUT, i);
}

static void put_u32(u8 *p, u32 v)
{
	p[0] = (u8)v;
	p[1] = (u8)(v >> 8);
	p[2] = (u8)(v >> 16);
	p[3] = (u8)(v >> 24);
}

/* the bytes a canonical line discipline (termios t) keeps of p[0..n), typed as the dump wrote
   them (no editing character unmarked: the plan made sure): each but an LNEXT (with IEXTEN: the
   next is kept as it is) and an EOF (ends a line, kept as a mark no read returns) */
static u32 kept_of_typed(const u8 *t, const u8 *p, u32 n)
{
	u32 k, kept = 0;
	int lnext = 0, ext = (get_u32(t + TERMIOS_LFLAG) & L_IEXTEN) != 0;
	for (k = 0; k < n; k++) {
		u8 ch = p[k];
		if (lnext) {
			kept++;
			lnext = 0;
		} else if (ext && ch == t[TERMIOS_CC + VLNEXT])
			lnext = 1;
		else if (ch != '\n' && ch == t[TERMIOS_CC + VEOF])
			continue;
		else
			kept++;
	}
	return kept;
}

/* n bytes read off fd and dropped (they are there: never waits) */
static void drop_bytes(struct ctx *c, long fd, u32 n, u64 i)
{
	u8 buf[256];
	while (n) {
		long r = S3(NR_read, fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r == -EINTR)
			continue;
		if (r == 0)
			fail(c, 5 /* EIO */, i);
		chk(c, r, i);
		n -= (u32)r;
	}
}

/*
 * The bytes a pair held for each end to read, put back; then the slave's own termios and locked
 * termios. A non-canonical slave's unchanged: its termios raw for the while (no input or output
 * processing, no echo, no signals; EXTPROC as it was), so that what is written at one end
 * arrives at the other as it is. A canonical slave's lines typed again (tty-data.img's bytes for
 * it: see canonicalTyped in @crtools/files) with its control characters and ICANON, IEXTEN, IXON
 * as they are but no other input processing, no signals, and echo on without output processing:
 * the echo (a byte for each byte kept) tells when all of it has been through, and is read back
 * off the master, fresh. The master's bytes are written at the slave without output processing.
 */
static void put_queued(struct ctx *c, struct plan_file *f, u64 n, u64 i)
{
	const u8 *d = AT(c, f[i].data_off);
	u32 to_slave = queued(&f[i], d, 0), to_master = queued(&f[i], d, 1);
	u32 lflag = get_u32(d + TTY_TERMIOS + TERMIOS_LFLAG);
	int canon = (lflag & L_ICANON) && !(lflag & L_EXTPROC);
	long master = (long)(c->h->fd_base + i), slave = -1;
	u8 tmp[36];
	u64 j;
	for (j = 0; j < n && slave < 0; j++)
		if (f[j].kind == FILE_TTY && !(f[j].tty_bits & (TTY_MASTER | TTY_DEVTTY | TTY_HUNG)) && f[j].tty_index == f[i].tty_index)
			slave = (long)(c->h->fd_base + j);
	if (slave < 0)
		fail(c, 19 /* ENODEV */, i); /* (the plan makes sure the pair has a slave) */
	for (j = 0; j < 36; j++)
		tmp[j] = d[TTY_TERMIOS + j];
	put_u32(tmp + TERMIOS_OFLAG, 0);
	if (canon) {
		put_u32(tmp + TERMIOS_IFLAG, get_u32(tmp + TERMIOS_IFLAG) & I_IXON);
		put_u32(tmp + TERMIOS_LFLAG, L_ICANON | L_ECHO | (lflag & L_IEXTEN));
	} else {
		put_u32(tmp + TERMIOS_IFLAG, 0);
		put_u32(tmp + TERMIOS_LFLAG, lflag & L_EXTPROC);
		tmp[TERMIOS_VTIME] = 0;
		tmp[TERMIOS_VMIN] = 1;
	}
	chk(c, S3(NR_ioctl, master, TCSETS, tmp), i);
	write_all(c, master, d + TTY_QUEUED + 8, to_slave, i);
	if (canon) {
		u32 echo = kept_of_typed(d + TTY_TERMIOS, d + TTY_QUEUED + 8, to_slave);
		wait_queued(c, master, echo, i);
		drop_bytes(c, master, echo, i);
	} else
		wait_queued(c, slave, to_slave, i);
	write_all(c, slave, d + TTY_QUEUED + 8 + to_slave, to_master, i);
	wait_queued(c, master, to_master, i);
	chk(c, S3(NR_ioctl, master, TCSETS, d + TTY_TERMIOS), i);
	set_locked(c, master, d + TTY_TERMIOS_LOCKED, i);
}

/*
 * The slaves of pty `index` that were hung up (their master closed, or vhangup): a master of
 * their own at that index (the devpts of their path: its ptmx), unlocked, each slave opened
 * with its owner, then the master closed, which hangs them up.
 */
static void open_hung(struct ctx *c, struct plan_file *f, u64 n, u64 first)
{
	char ptmx[512];
	const char *p = STR(c, f[first].path);
	u64 k, slash = 0, j;
	int zero = 0;
	long master;
	for (k = 0; p[k]; k++)
		if (p[k] == '/')
			slash = k;
	if (slash + 6 > sizeof(ptmx))
		fail(c, 36 /* ENAMETOOLONG */, first);
	for (k = 0; k <= slash; k++)
		ptmx[k] = p[k];
	ptmx[k++] = 'p', ptmx[k++] = 't', ptmx[k++] = 'm', ptmx[k++] = 'x', ptmx[k] = 0;
	master = open_ptmx_owned(c, ptmx, O_RDONLY, &f[first], first);
	chk(c, S3(NR_ioctl, master, TIOCSPTLCK, &zero), first);
	for (j = first; j < n; j++) {
		long fd;
		if (f[j].kind != FILE_TTY || !(f[j].tty_bits & TTY_HUNG) || f[j].tty_index != f[first].tty_index)
			continue;
		fd = chk(c, xopen(STR(c, f[j].path), (f[j].flags & ~(u64)O_ASYNC) | O_NOCTTY), j);
		tty_chown(c, fd, &f[j], j);
		to_slot(c, fd, j);
	}
	S1(NR_close, master);
}

/* a terminal's owner and settings (data: termios, locked termios, window size): no bit locked for
   the while, so that termios is set whole, then its own lock */
static void set_tty_params(struct ctx *c, long fd, const struct plan_file *f, u64 i)
{
	const u8 *d = AT(c, f->data_off);
	u8 unlocked[36];
	u64 k;
	for (k = 0; k < sizeof(unlocked); k++)
		unlocked[k] = 0;
	chk(c, S3(NR_fchown, fd, f->tty_uid, f->tty_gid), i);
	set_locked(c, fd, unlocked, i);
	chk(c, S3(NR_ioctl, fd, TCSETS, d + TTY_TERMIOS), i);
	set_locked(c, fd, d + TTY_TERMIOS_LOCKED, i);
	chk(c, S3(NR_ioctl, fd, TIOCSWINSZ, d + TTY_WINSIZE), i);
}

void open_ttys(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i;
	int zero = 0, one = 1;

	/* the console, virtual consoles (by path, never becoming the root's terminal) and the
	   terminals handed over: the settings recorded */
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind == FILE_INHERIT && (f[i].tty_bits & TTY_EXT)) {
			set_tty_params(c, (long)(c->h->fd_base + i), &f[i], i);
			continue;
		}
		if (f[i].kind != FILE_TTY || !(f[i].tty_bits & TTY_SIMPLE))
			continue;
		fd = chk(c, xopen(STR(c, f[i].path), (f[i].flags & ~(u64)O_ASYNC) | O_NOCTTY), i);
		set_tty_params(c, fd, &f[i], i);
		to_slot(c, fd, i);
	}

	/* masters: termios first, then the locked termios (which would keep the fresh pty's values
	   of the bits it locks), window size, packet mode; unlocked so that slaves can be opened */
	for (i = 0; i < n; i++) {
		const u8 *d;
		long fd;
		if (f[i].kind != FILE_TTY || !(f[i].tty_bits & TTY_MASTER))
			continue;
		d = AT(c, f[i].data_off);
		fd = open_ptmx_owned(c, STR(c, f[i].path), f[i].flags, &f[i], i);
		chk(c, S3(NR_ioctl, fd, TIOCSPTLCK, &zero), i);
		chk(c, S3(NR_ioctl, fd, TCSETS, d + TTY_TERMIOS), i);
		/* (a pair with bytes queued gets its locked termios once they are back: put_queued) */
		if (!queued(&f[i], d, 0) && !queued(&f[i], d, 1))
			set_locked(c, fd, d + TTY_TERMIOS_LOCKED, i);
		chk(c, S3(NR_ioctl, fd, TIOCSWINSZ, d + TTY_WINSIZE), i);
		if (f[i].tty_bits & TTY_PACKET)
			chk(c, S3(NR_ioctl, fd, TIOCPKT, &one), i);
		to_slot(c, fd, i);
	}
	/* slaves hung up: each index's together, at the first of them */
	for (i = 0; i < n; i++) {
		u64 j;
		int seen = 0;
		if (f[i].kind != FILE_TTY || !(f[i].tty_bits & TTY_HUNG))
			continue;
		for (j = 0; j < i && !seen; j++)
			seen = f[j].kind == FILE_TTY && (f[j].tty_bits & TTY_HUNG) && f[j].tty_index == f[i].tty_index;
		if (!seen)
			open_hung(c, f, n, i);
	}
	/* slaves, by path (never becoming the root's terminal), with their owner */
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind != FILE_TTY || (f[i].tty_bits & (TTY_MASTER | TTY_DEVTTY | TTY_HUNG | TTY_SIMPLE)))
			continue;
		fd = chk(c, xopen(STR(c, f[i].path), (f[i].flags & ~(u64)O_ASYNC) | O_NOCTTY), i);
		tty_chown(c, fd, &f[i], i);
		to_slot(c, fd, i);
	}
	/* every end open: the bytes queued put back */
	for (i = 0; i < n; i++) {
		if (f[i].kind != FILE_TTY || !(f[i].tty_bits & TTY_MASTER))
			continue;
		if (queued(&f[i], AT(c, f[i].data_off), 0) || queued(&f[i], AT(c, f[i].data_off), 1))
			put_queued(c, f, n, i);
	}
	/* once every end is open: exclusive mode, the lock */
	for (i = 0; i < n; i++) {
		if (f[i].kind != FILE_TTY || (f[i].tty_bits & (TTY_DEVTTY | TTY_HUNG)))
			continue;
		if (f[i].tty_bits & TTY_EXCL)
			chk(c, S2(NR_ioctl, c->h->fd_base + i, TIOCEXCL), i);
		if (f[i].tty_bits & TTY_LOCKED)
			chk(c, S3(NR_ioctl, c->h->fd_base + i, TIOCSPTLCK, &one), i);
	}
}

/* A session leader, just after setsid: the pair recorded as its session's terminal becomes its
   controlling terminal (through the slave of the file table, or the slave's path when only the
   master is held). */
void restore_ctty(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 i;
	for (i = 0; i < c->h->nfiles; i++) {
		char path[512];
		long fd;
		if ((f[i].kind != FILE_TTY && !(f[i].kind == FILE_INHERIT && (f[i].tty_bits & TTY_EXT))) || f[i].tty_sid != c->t->pid)
			continue;
		if (f[i].kind == FILE_TTY && (f[i].tty_bits & TTY_MASTER)) {
			/* (under --root, the slave of the tree's own devpts, below its new root) */
			const char *p = pts_path(path, sizeof(path), c->h->root ? STR(c, c->h->root) : "", f[i].tty_index);
			if (!p)
				fail(c, 36 /* ENAMETOOLONG */, i);
			fd = chk(c, xopen(p, O_RDWR | O_NOCTTY), i);
		}
		else
			fd = (long)(c->h->fd_base + i);
		/* (-j: the restore's own terminal, taken from the restore's session) */
		chk(c, S3(NR_ioctl, fd, TIOCSCTTY, (f[i].tty_bits & TTY_STEAL) ? 1 : 0), i);
		if (f[i].kind == FILE_TTY && (f[i].tty_bits & TTY_MASTER))
			S1(NR_close, fd);
	}
}

/* The session leader, once every task has made its threads (every group exists): its
   terminal's foreground group (through /dev/tty, its terminal now; all signals are blocked, so
   a background caller gets no SIGTTOU). */
void restore_ctty_pgrp(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 i;
	for (i = 0; i < c->h->nfiles; i++) {
		int pgrp;
		long fd;
		if ((f[i].kind != FILE_TTY && !(f[i].kind == FILE_INHERIT && (f[i].tty_bits & TTY_EXT))) || f[i].tty_sid != c->t->pid || !f[i].tty_pgrp)
			continue;
		set_step(c, STEP_CTTY);
		wait_formed(c);
		pgrp = (int)f[i].tty_pgrp;
		fd = chk(c, xopen("/dev/tty", O_RDWR | O_NOCTTY), i);
		chk(c, S3(NR_ioctl, fd, TIOCSPGRP, &pgrp), i);
		S1(NR_close, fd);
	}
}

/* /dev/tty held at descriptor fd by this task (its one holder): opened again, the session's
   terminal being back by now (its leader took it before this task was forked, or is this task) */
void open_dev_tty(struct ctx *c, const struct plan_file *f, u64 fd)
{
	long o = chk(c, xopen(STR(c, f->path), (f->flags & ~(u64)O_ASYNC) | O_NOCTTY), fd);
	if ((u64)o != fd) {
		chk(c, S2(NR_dup2, o, fd), fd);
		S1(NR_close, o);
	}
}
