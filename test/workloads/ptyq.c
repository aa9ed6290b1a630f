/* Bytes queued in a terminal (issue 15): a pty pair whose ends both have bytes waiting to be read.
 *
 *   ptyq MODE STATEFILE
 *     The master at fd 3, its slave at fd 4 (neither the task's controlling terminal but in ctty).
 *     The slave's termios by MODE:
 *       cooked  non-canonical, with echo, CR to NL on input (ICRNL) and NL to CR NL on output
 *               (OPOST ONLCR): what passes the line discipline is changed on the way;
 *       raw     cfmakeraw: nothing is changed on the way;
 *       canon   canonical, as a fresh pty is (echo, signals, ICRNL, IXON...) with EOL ';': lines
 *               typed and ended by CR, by EOF (one alone too), by EOL, one holding an ERASE and
 *               an INTR typed after LNEXT, then a line being typed, edited by ERASE;
 *       ctty    canon, the slave the task's controlling terminal, read through /dev/tty (fd 5);
 *       lines   canonical without echo or output processing, complete lines of plain text only
 *               (what CRIU 4.2 reads and writes back as it is).
 *     MODE's input is written at the master (the slave's input: and, echoed, the master's too)
 *     and "out\n\tX" at the slave (the master's input), each waited for until it is queued
 *     (echoes included). What each end then holds is learnt first on a scratch pair made the same way.
 *     "ready" once set up. On SIGUSR1 it reads what each end holds and compares it with what the
 *     scratch pair held (the bytes, their count; canonical: each line by a read of its own, then
 *     the line being typed, read with ICANON off for the while), checks the termios is as set,
 *     then writes the same again, so that the pair holds what it did: "check ok" or
 *     "check bad what=...".
 */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

static const char out[] = "out\n\tX";
/* canonical: "in\n" (CR), "1" (EOF), "" (EOF), "a;" (EOL), "x<DEL>y<^C>z\n" (each after LNEXT),
   then "2z\t" being typed (x erased) */
static const char incanon[] = "in\r1\x04\x04" "a;x\x16\x7fy\x16\x03z\r2x\x7fz\t";
static const char inlines[] = "in\r1\ra;";
static const char *in = "in\r1\r2x\t";
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

static int canonical(void) {
	return !strcmp(mode, "canon") || !strcmp(mode, "ctty") || !strcmp(mode, "lines");
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
	if (canonical()) {
		want.c_cc[VEOL] = ';';
		if (!strcmp(mode, "lines")) {
			want.c_lflag &= ~(tcflag_t)ECHO;
			want.c_oflag &= ~(tcflag_t)OPOST;
		}
	} else {
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

/* what a canonical slave holds: each line as a read returns it ("<length>:" then its bytes),
   then "|" and the line being typed (read with ICANON off for the while), into buf */
static int take_lines(int fd, char *buf, int size) {
	int got = 0;
	char line[512];
	for (int k = 0; k < 64; k++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (queued(fd) <= 0 && (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))) break;
		ssize_t r = read(fd, line, sizeof line);
		if (r < 0 || got + 16 + r > size) return -1;
		got += snprintf(buf + got, size - got, "%d:", (int)r);
		memcpy(buf + got, line, r);
		got += r;
	}
	struct termios t, nc;
	if (tcgetattr(fd, &t)) return -1;
	nc = t;
	nc.c_lflag &= ~ICANON;
	nc.c_cc[VMIN] = 0;
	nc.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &nc)) return -1;
	buf[got++] = '|';
	int n = queued(fd);
	if (n < 0 || got + n > size || (n && read(fd, buf + got, n) != n)) return -1;
	got += n;
	return tcsetattr(fd, TCSANOW, &t) ? -1 : got;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	snprintf(mode, sizeof mode, "%s", argv[1]);
	if (strcmp(mode, "cooked") && strcmp(mode, "raw") && !canonical()) return 2;
	if (canonical()) in = strcmp(mode, "lines") ? incanon : inlines;
	wl_detach(argv[2]);
	wl_handle_usr1();
	/* the scratch pair: what each end holds once the bytes are written */
	int m, s;
	char wm[256], ws[512];
	if (pair(&m, &s) || fill(m, s, -1, -1)) return 3;
	int cs = queued(s);
	int nm = take(m, wm, sizeof wm), ns = canonical() ? take_lines(s, ws, sizeof ws) : take(s, ws, sizeof ws);
	if (nm <= 0 || ns <= 0) return 4;
	if (!canonical()) cs = ns;
	close(m);
	close(s);
	/* the pair kept (ctty: the task's controlling terminal, /dev/tty at fd 5) */
	if (pair(&m, &s) || at(m, 3) < 0 || at(s, 4) < 0) return 5;
	if (!strcmp(mode, "ctty") && (ioctl(4, TIOCSCTTY, 0) || at(open("/dev/tty", O_RDWR), 5) < 0)) return 5;
	int rd = strcmp(mode, "ctty") ? 4 : 5;
	if (fill(3, 4, nm, cs)) return 5;
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		char gm[256], gs[512];
		const char *bad = 0;
		struct termios t;
		int hm = queued(3), hs = queued(rd);
		int am = take(3, gm, sizeof gm), as = canonical() ? take_lines(rd, gs, sizeof gs) : take(rd, gs, sizeof gs);
		if (hm != nm || am != nm || memcmp(gm, wm, nm)) bad = "master-queue";
		else if (hs != cs || as != ns || memcmp(gs, ws, ns)) bad = "slave-queue";
		else if (tcgetattr(4, &t) || t.c_iflag != want.c_iflag || t.c_oflag != want.c_oflag || t.c_lflag != want.c_lflag || memcmp(t.c_cc, want.c_cc, sizeof t.c_cc)) bad = "termios";
		else if (!strcmp(mode, "ctty") && tcgetsid(5) != getpid()) bad = "ctty";
		/* the same bytes again: the pair holds what it did (every byte was read: a canonical
		   slave's line discipline starts afresh) */
		if (fill(3, 4, nm, cs) && !bad) bad = "refill";
		if (bad) wl_say("check bad what=%s got=%d/%d of %d/%d", bad, am, as, nm, ns);
		else wl_say("check ok");
	}
}
