/* Hung-up terminals (issue 15): pty slaves whose master was closed, as zdtm's pty04 holds them.
 *
 *   ptyhup STATEFILE
 *     A pair is opened, its slave twice (fds 3 and 4, O_NONBLOCK on 4), the first made the task's
 *     controlling terminal, then the master is closed: both slaves are hung up (every ioctl
 *     answers EIO, a read 0, a write EIO) and the session has no terminal any more. A child
 *     holds a third descriptor on the same slave (fd 3). A second pair, live, is kept at fds 5
 *     (master) and 6 (slave), a line queued at its slave. "ready" once set up. On SIGUSR1 it
 *     checks, in itself and its child: the hung-up slaves still answer as hung up, name the same
 *     /dev/pts/N (deleted: the master's close removed it), keep their flags, and the task has no controlling terminal; the live pair holds
 *     its line, and still carries one written each way (then put back): "check ok" or
 *     "check bad what=...".
 */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <sys/ioctl.h>
#include <termios.h>

static char hungName[64], liveName[64];

static int at(int fd, int n) {
	if (fd < 0 || dup2(fd, n) != n) return -1;
	if (fd != n) close(fd);
	return n;
}

/* a pair: master, its slave's name; -1 on failure */
static int ptmx(char *name, size_t size) {
	int zero = 0, n = -1;
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m < 0 || ioctl(m, TIOCSPTLCK, &zero) || ioctl(m, TIOCGPTN, &n)) return -1;
	snprintf(name, size, "/dev/pts/%d", n);
	return m;
}

/* fd is a hung-up slave of the pty hungName with status flags fl */
static int hung(int fd, int fl) {
	struct termios t;
	char buf[8], link[64], path[64];
	ssize_t n;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof link - 1);
	if (n < 0) return 0;
	link[n] = 0;
	/* (the master's close removed /dev/pts/N: the slave's path shows it deleted) */
	if (strncmp(link, hungName, strlen(hungName)) || strcmp(link + strlen(hungName), " (deleted)")) return 0;
	if ((fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != fl) return 0;
	if (tcgetattr(fd, &t) == 0 || errno != EIO) return 0;
	if (read(fd, buf, sizeof buf) != 0) return 0;
	return write(fd, "x", 1) < 0 && errno == EIO;
}

/* no controlling terminal: /proc/self/stat's tty_nr is 0 */
static int no_ctty(void) {
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0) close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	int ppid, pgrp, sid, tty;
	char st;
	return p && sscanf(p + 2, "%c %d %d %d %d", &st, &ppid, &pgrp, &sid, &tty) == 5 && tty == 0;
}

/* the live pair: the line queued, read; one more each way; the line queued again */
static const char *live(void) {
	char buf[64];
	int q = -1;
	if (ioctl(6, FIONREAD, &q) || q != 6) return "live-queue";
	if (read(6, buf, sizeof buf) != 6 || memcmp(buf, "hello\n", 6)) return "live-line";
	if (write(6, "back", 4) != 4) return "live-write";
	for (int i = 0; i < 200 && (ioctl(5, FIONREAD, &q) || q != 4); i++) usleep(5000);
	if (read(5, buf, sizeof buf) != 4 || memcmp(buf, "back", 4)) return "live-read";
	if (write(5, "hello\n", 6) != 6) return "live-refill";
	for (int i = 0; i < 200 && (ioctl(6, FIONREAD, &q) || q != 6); i++) usleep(5000);
	return q == 6 ? 0 : "live-refill";
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	wl_detach(argv[1]);
	wl_handle_usr1();
	signal(SIGHUP, SIG_IGN);
	int m = at(ptmx(hungName, sizeof hungName), 10);
	if (m < 0 || at(open(hungName, O_RDWR), 3) < 0 || at(open(hungName, O_RDWR | O_NONBLOCK), 4) < 0) return 3;
	if (ioctl(3, TIOCSCTTY, 1)) return 3;
	/* the live pair: master at 5, slave at 6 */
	if (at(ptmx(liveName, sizeof liveName), 5) < 0 || at(open(liveName, O_RDWR | O_NOCTTY), 6) < 0) return 4;
	struct termios t;
	if (tcgetattr(6, &t)) return 4;
	t.c_lflag &= ~ECHO;
	if (tcsetattr(6, TCSANOW, &t) || write(5, "hello\n", 6) != 6) return 4;
	int q = -1;
	for (int i = 0; i < 200 && (ioctl(6, FIONREAD, &q) || q != 6); i++) usleep(5000);
	close(m); /* both slaves are hung up */
	if (!hung(3, O_RDWR) || !hung(4, O_RDWR | O_NONBLOCK) || !no_ctty()) return 6;
	/* the child: the same slave at its fd 3 (it reports through a pipe) */
	int rep[2], ask[2];
	if (pipe(rep) || pipe(ask)) return 5;
	pid_t kid = fork();
	if (kid == 0) {
		close(4);
		close(5);
		close(6);
		for (;;) {
			char c;
			if (read(ask[0], &c, 1) != 1) _exit(0);
			c = hung(3, O_RDWR) ? 'y' : 'n';
			if (write(rep[1], &c, 1) != 1) _exit(1);
		}
	}
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)kid);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		char c = '?';
		if (!hung(3, O_RDWR)) bad = "hung3";
		else if (!hung(4, O_RDWR | O_NONBLOCK)) bad = "hung4";
		else if (!no_ctty()) bad = "ctty";
		else if (write(ask[1], "?", 1) != 1 || read(rep[0], &c, 1) != 1 || c != 'y') bad = "child";
		else bad = live();
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
