/* Bytes queued in a terminal (issue 15): a pty pair whose ends both have bytes waiting to be read.
 *
 *   ptyq MODE STATEFILE
 *     The master at fd 3, its slave at fd 4 (neither the task's controlling terminal). The slave's
 *     termios by MODE:
 *       cooked  non-canonical, with echo, CR to NL on input (ICRNL) and NL to CR NL on output
 *               (OPOST ONLCR): what passes the line discipline is changed on the way;
 *       raw     cfmakeraw: nothing is changed on the way;
 *       canon   canonical (a line typed and ended: TIOCINQ counts it).
 *     "in\r1\r2x\t" is written at the master (the slave's input: and, echoed, the master's too)
 *     and "out\n\tX" at the slave (the master's input), each waited for until it is queued
 *     (echoes included). What each end then holds is learnt first on a scratch pair made the same way.
 *     "ready" once set up. On SIGUSR1 it reads what each end holds and compares it with what the
 *     scratch pair held (the bytes, their count), checks the termios is as set, then writes the
 *     same again, so that the pair holds what it did (but canon: its check holds once): "check
 *     ok" or "check bad what=...".
 */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

static const char in[] = "in\r1\r2x\t", out[] = "out\n\tX";
static char mode[16];
static struct termios want;

static int at(int fd, int n) {
	if (fd < 0 || dup2(fd, n) != n) return -1;
	if (fd != n) close(fd);
	return n;
}

static int queued(int fd) {
	int n = -1;
	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/* a pair (master, slave) with the mode's termios; 0, or -1 */
static int pair(int *m, int *s) {
	int zero = 0;
	char name[64];
	*m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (*m < 0 || ioctl(*m, TIOCSPTLCK, &zero)) return -1;
	int n = -1;
	if (ioctl(*m, TIOCGPTN, &n)) return -1;
	snprintf(name, sizeof name, "/dev/pts/%d", n);
	*s = open(name, O_RDWR | O_NOCTTY);
	if (*s < 0 || tcgetattr(*s, &want)) return -1;
	if (strcmp(mode, "canon")) {
		cfmakeraw(&want);
		if (!strcmp(mode, "cooked")) {
			want.c_lflag |= ECHO;
			want.c_iflag |= ICRNL;
			want.c_oflag |= OPOST | ONLCR;
		}
		want.c_cc[VMIN] = 1;
		want.c_cc[VTIME] = 0;
	}
	return tcsetattr(*s, TCSANOW, &want);
}

/* until the counts queued at both ends have not moved for 100 ms (the kernel's worker passes
   what is written at one end to the other's line discipline, which may echo it back) */
static void settle(int m, int s) {
	int last = -2, same = 0;
	for (int i = 0; i < 400 && same < 20; i++) {
		int now = queued(m) * 4096 + queued(s);
		same = now == last ? same + 1 : 0;
		last = now;
		usleep(5000);
	}
}

/* the bytes written at each end in turn, each settled before the next (so that echoes and
   output queue at the master in one order); with mw >= 0, the counts must then be mw, sw */
static int fill(int m, int s, int mw, int sw) {
	if (write(m, in, strlen(in)) != (ssize_t)strlen(in)) return -1;
	settle(m, s);
	if (write(s, out, strlen(out)) != (ssize_t)strlen(out)) return -1;
	settle(m, s);
	return mw < 0 ? 0 : queued(m) == mw && queued(s) == sw ? 0 : -1;
}

/* what fd holds (n bytes, counted by FIONREAD), read into buf */
static int take(int fd, char *buf, int size) {
	int n = queued(fd), got = 0;
	if (n < 0 || n > size) return -1;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) return -1;
		got += r;
	}
	return got;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	snprintf(mode, sizeof mode, "%s", argv[1]);
	if (strcmp(mode, "cooked") && strcmp(mode, "raw") && strcmp(mode, "canon")) return 2;
	wl_detach(argv[2]);
	wl_handle_usr1();
	/* the scratch pair: what each end holds once the bytes are written */
	int m, s;
	char wm[256], ws[256];
	if (pair(&m, &s) || fill(m, s, -1, -1)) return 3;
	int nm = take(m, wm, sizeof wm), ns = take(s, ws, sizeof ws);
	if (nm <= 0 || ns <= 0) return 4;
	close(m);
	close(s);
	/* the pair kept */
	if (pair(&m, &s) || at(m, 3) < 0 || at(s, 4) < 0 || fill(3, 4, nm, ns)) return 5;
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		char gm[256], gs[256];
		const char *bad = 0;
		struct termios t;
		int hm = queued(3), hs = queued(4);
		int am = take(3, gm, sizeof gm), as = take(4, gs, sizeof gs);
		if (hm != nm || am != nm || memcmp(gm, wm, nm)) bad = "master-queue";
		else if (hs != ns || as != ns || memcmp(gs, ws, ns)) bad = "slave-queue";
		else if (tcgetattr(4, &t) || t.c_iflag != want.c_iflag || t.c_oflag != want.c_oflag || t.c_lflag != want.c_lflag || memcmp(t.c_cc, want.c_cc, sizeof t.c_cc)) bad = "termios";
		/* the same bytes again: the pair holds what it did (canonical: a line's end left queued
		   would join the next, so only the first check holds) */
		if (strcmp(mode, "canon") && fill(3, 4, nm, ns) && !bad) bad = "refill";
		if (bad) wl_say("check bad what=%s got=%d/%d of %d/%d", bad, am, as, nm, ns);
		else wl_say("check ok");
	}
}
