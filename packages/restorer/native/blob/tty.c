/*
 * crtools restorer blob: terminals. The root makes every pty pair of the tree (open_ttys, from
 * open_file_table); a session leader takes its controlling terminal back right after setsid
 * (restore_ctty) and, once every task has made its threads (so every process group exists),
 * gives it its foreground group (restore_ctty_pgrp).
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
#define TIOCGPTN 0x80045430
#define TIOCSPTLCK 0x40045431

/* data: termios (36 bytes, at 0), locked termios (at 40), window size (at 80) */
#define TTY_TERMIOS 0
#define TTY_TERMIOS_LOCKED 40
#define TTY_WINSIZE 80

/* "/dev/pts/N" into buf */
static const char *pts_path(char *buf, u64 index)
{
	static const char pre[] = "/dev/pts/";
	char dig[20];
	u64 k = 0, m = 0, j;
	for (j = 0; pre[j]; j++)
		buf[m++] = pre[j];
	do
		dig[k++] = (char)('0' + index % 10);
	while ((index /= 10));
	while (k)
		buf[m++] = dig[--k];
	buf[m] = 0;
	return buf;
}

/*
 * A master with the recorded index: the kernel hands out the lowest free index, so open until it
 * comes (at most 32 at once, as CRIU does), keeping the others open meanwhile.
 */
static long open_ptmx_index(struct ctx *c, const struct plan_file *f, u64 i)
{
	long held[32], fd = -1;
	u64 k, n = 0;
	for (k = 0; k < 32; k++) {
		int idx = -1;
		long o = chk(c, xopen(STR(c, f->path), (f->flags & ~(u64)O_ASYNC) | O_NOCTTY), i);
		chk(c, S3(NR_ioctl, o, TIOCGPTN, &idx), i);
		if ((u64)idx == f->tty_index) {
			fd = o;
			break;
		}
		held[n++] = o;
		if ((u64)idx > f->tty_index || f->tty_index - (u64)idx >= 32)
			break;
	}
	for (k = 0; k < n; k++)
		S1(NR_close, held[k]);
	if (fd < 0)
		fail(c, EBUSY, i); /* the index is taken */
	return fd;
}

static void to_slot(struct ctx *c, long fd, u64 i)
{
	if ((u64)fd != c->h->fd_base + i) {
		chk(c, S2(NR_dup2, fd, c->h->fd_base + i), i);
		S1(NR_close, fd);
	}
}

void open_ttys(struct ctx *c)
{
	struct plan_file *f = AT(c, c->h->files_off);
	u64 n = c->h->nfiles, i;
	int zero = 0, one = 1;

	/* masters: termios first, then the locked termios (which would keep the fresh pty's values
	   of the bits it locks), window size, packet mode; unlocked so that slaves can be opened */
	for (i = 0; i < n; i++) {
		const u8 *d;
		long fd;
		if (f[i].kind != FILE_TTY || !(f[i].tty_bits & TTY_MASTER))
			continue;
		d = AT(c, f[i].data_off);
		fd = open_ptmx_index(c, &f[i], i);
		chk(c, S3(NR_ioctl, fd, TIOCSPTLCK, &zero), i);
		chk(c, S3(NR_ioctl, fd, TCSETS, d + TTY_TERMIOS), i);
		chk(c, S3(NR_ioctl, fd, TIOCSLCKTRMIOS, d + TTY_TERMIOS_LOCKED), i);
		chk(c, S3(NR_ioctl, fd, TIOCSWINSZ, d + TTY_WINSIZE), i);
		if (f[i].tty_bits & TTY_PACKET)
			chk(c, S3(NR_ioctl, fd, TIOCPKT, &one), i);
		to_slot(c, fd, i);
	}
	/* slaves, by path (never becoming the root's terminal), with their owner */
	for (i = 0; i < n; i++) {
		long fd;
		if (f[i].kind != FILE_TTY || (f[i].tty_bits & (TTY_MASTER | TTY_DEVTTY)))
			continue;
		fd = chk(c, xopen(STR(c, f[i].path), (f[i].flags & ~(u64)O_ASYNC) | O_NOCTTY), i);
		chk(c, S3(NR_fchown, fd, f[i].tty_uid, f[i].tty_gid), i);
		to_slot(c, fd, i);
	}
	/* once every end is open: exclusive mode, the lock */
	for (i = 0; i < n; i++) {
		if (f[i].kind != FILE_TTY || (f[i].tty_bits & TTY_DEVTTY))
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
		char path[32];
		long fd;
		if (f[i].kind != FILE_TTY || f[i].tty_sid != c->t->pid)
			continue;
		if (f[i].tty_bits & TTY_MASTER)
			fd = chk(c, xopen(pts_path(path, f[i].tty_index), O_RDWR | O_NOCTTY), i);
		else
			fd = (long)(c->h->fd_base + i);
		chk(c, S3(NR_ioctl, fd, TIOCSCTTY, 0), i);
		if (f[i].tty_bits & TTY_MASTER)
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
		if (f[i].kind != FILE_TTY || f[i].tty_sid != c->t->pid || !f[i].tty_pgrp)
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
