/* pty STATEFILE: a session led by this process, whose controlling terminal is the slave of a pty
 * pair it holds; a child in a process group of its own is the terminal's foreground group.
 *   fd 20: the master (packet mode on), fd 21: the slave (exclusive mode); window 42x123
 *   (and 640x480 pixels); termios: no echo, canonical, VINTR ^B, VMIN 3; locked termios
 *   with ICANON fixed.
 *   The child holds the slave at fd 0 and 1, reads lines from it and answers each "X" with
 *   "pong:X"; it also holds fd 22, the master of a second pair, locked (TIOCSPTLCK) with its
 *   slave never opened; its answer carries that pair's lock and index.
 * With "devtty", the child also holds fd 23 opened through /dev/tty (its session's terminal) and
 * its answer says whether that still is its terminal (TIOCGPGRP there is its own group).
 * With "pidns", all of it lives in a pid namespace of its own: the workload unshares it and forks
 * the namespace's init, which leads a new session and does the above (its child is pid 2 there);
 * "ready pid=<the init as crtools sees it>" comes from the outside parent, which then exits.
 * With "mntns" (and pidns), in a mount namespace of its own too, as containers have it: the init
 * (a fresh exec inside it) makes its mounts private, mounts a proc of its pid namespace and a
 * devpts of its own (newinstance) on /dev/pts, detaches /dev/shm, and opens its pairs through
 * /dev/pts/ptmx there.
 * "ready pid=N child=C pts=P pts2=Q"; on SIGUSR1: the same pty indices (by TIOCGPTN and by the
 * slave's name), termios, locked termios, window size, packet mode, exclusive mode, the lock of
 * the second pair, the session and foreground group of the terminal (TIOCGSID, tcgetpgrp), and
 * a round trip through the child. "check ok" or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <termios.h>

static int at(int fd, int n) {
	if (fd < 0 || dup2(fd, n) != n) return -1;
	if (fd != n) close(fd);
	return n;
}

static int ptn(int fd) {
	int n = -1;
	return ioctl(fd, TIOCGPTN, &n) == 0 ? n : -1;
}

static int iget(int fd, unsigned long req) {
	int v = -1;
	return ioctl(fd, req, &v) == 0 ? v : -100;
}

/* A line to the child through the terminal, its answer back (packet mode: a TIOCPKT_DATA byte
   first); the bytes read, or -1. */
static int roundtrip(char *buf, int size) {
	int got = 0;
	struct pollfd p = { 20, POLLIN, 0 };
	if (write(20, "ping\n", 5) != 5) return -1;
	while ((got < 2 || buf[got - 1] != '\n') && poll(&p, 1, 2000) == 1) {
		ssize_t n = read(20, buf + got, size - 1 - got);
		if (n <= 0) return -1;
		got += n;
	}
	buf[got] = 0;
	return got;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int devtty = 0, pidns = 0, mntns = 0, nsinit = -1;
	for (int i = 1; i < argc - 1; i++) {
		devtty |= !strcmp(argv[i], "devtty");
		pidns |= !strcmp(argv[i], "pidns");
		mntns |= !strcmp(argv[i], "mntns");
		if (!strcmp(argv[i], "--init") && i + 1 < argc - 1) nsinit = atoi(argv[++i]);
	}
	if (nsinit >= 0) mntns = 1;
	pidns |= mntns;
	int nsready[2] = { -1, -1 };
	const char *ptmx = "/dev/ptmx";
	if (nsinit >= 0) {
		/* the init of mntns, exec'd inside its namespaces */
		wl_state = argv[argc - 1];
		nsready[1] = nsinit;
		setsid();
		if (mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0) ||
		    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")) {
			wl_say("error mount: %s", strerror(errno));
			return 1;
		}
		/* (the host's /dev/shm is none of the tree's: not taken into its images) */
		while (umount2("/dev/shm", MNT_DETACH) == 0)
			;
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
		if (nul > 2) close(nul);
		ptmx = "/dev/pts/ptmx";
	} else {
		wl_detach(argv[argc - 1]);
	}
	if (pidns && nsinit < 0) {
		if (unshare(CLONE_NEWPID | (mntns ? CLONE_NEWNS : 0)) || pipe(nsready)) {
			wl_say("error unshare");
			return 1;
		}
		pid_t init = fork();
		if (init < 0) return 1;
		if (init > 0) return wl_init_ready(nsready, init);
		close(nsready[0]);
		if (mntns) {
			/* by its path name, looked up in the new namespace (/proc/self/exe would be the host's mount) */
			char fd[16], exe[4096];
			ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
			if (n <= 0) _exit(127);
			exe[n] = 0;
			snprintf(fd, sizeof fd, "%d", nsready[1]);
			execl(exe, argv[0], "--init", fd, devtty ? "devtty" : "-", argv[argc - 1], (char *)0);
			_exit(127);
		}
		setsid();
	}
	wl_handle_usr1();
	if (at(open(ptmx, O_RDWR | O_NOCTTY), 20) < 0) return 3;
	int one = 0;
	if (ioctl(20, TIOCSPTLCK, &one)) return 4;
	int pts = ptn(20);
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%d", pts);
	if (at(open(name, O_RDWR), 21) < 0) return 5; /* a session leader without a terminal: it becomes ours */
	struct termios t;
	if (tcgetattr(21, &t)) return 6;
	t.c_lflag &= ~(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ICANON;
	t.c_cc[VINTR] = 2;
	t.c_cc[VMIN] = 3;
	if (tcsetattr(21, TCSANOW, &t)) return 7;
	struct termios lk;
	memset(&lk, 0, sizeof lk);
	lk.c_lflag = ICANON;
	if (ioctl(21, TIOCSLCKTRMIOS, &lk)) return 8;
	struct winsize w = { 42, 123, 640, 480 };
	if (ioctl(20, TIOCSWINSZ, &w)) return 9;
	int on = 1;
	if (ioctl(20, TIOCPKT, &on)) return 10;
	if (ioctl(21, TIOCEXCL)) return 11;

	int sync[2], go[2];
	if (pipe(sync) || pipe(go)) return 12;
	pid_t child = fork();
	if (child == 0) {
		setpgid(0, 0);
		close(sync[0]);
		if (nsready[1] >= 0) close(nsready[1]);
		if (at(open(ptmx, O_RDWR | O_NOCTTY), 22) < 0) _exit(1);
		int lock = 1;
		if (ioctl(22, TIOCSPTLCK, &lock)) _exit(1);
		dup2(21, 0);
		dup2(21, 1);
		close(20);
		close(21);
		if (devtty && at(open("/dev/tty", O_RDWR), 23) < 0) _exit(1);
		if (write(sync[1], "x", 1) != 1) _exit(1);
		close(sync[1]);
		close(go[1]);
		char line[256];
		if (read(go[0], line, 1) != 1) _exit(1); /* the foreground group is ours */
		close(go[0]);
		for (;;) {
			ssize_t n = read(0, line, sizeof line - 1);
			if (n <= 0) {
				if (n < 0 && errno == EINTR) continue;
				_exit(0);
			}
			if (line[n - 1] == '\n') n--;
			line[n] = 0;
			char out[300];
			int k = snprintf(out, sizeof out, "pong:%s lock=%d pts2=%d%s\n", line, iget(22, TIOCGPTLCK), ptn(22),
					 !devtty ? "" : iget(23, TIOCGPGRP) == (int)getpgrp() ? " devtty=1" : " devtty=0");
			if (write(1, out, k) != k) _exit(1);
		}
	}
	if (child < 0) return 13;
	setpgid(child, child);
	close(sync[1]);
	char c;
	if (read(sync[0], &c, 1) != 1) return 14;
	close(sync[0]);
	if (tcsetpgrp(21, child)) return 15;
	close(go[0]);
	if (write(go[1], "g", 1) != 1) return 15;
	close(go[1]);
	char want[64], buf[128];
	if (roundtrip(buf, sizeof buf) < 0) return 16;
	int pts2 = -1;
	if (sscanf(buf + 1, "pong:ping lock=1 pts2=%d", &pts2) != 1) return 17;
	snprintf(want, sizeof want, "pong:ping lock=1 pts2=%d%s\r\n", pts2, devtty ? " devtty=1" : "") /* ONLCR */;

	if (pidns) {
		/* (the state file's first line from the init: its stdio buffers exist before the tree is
		   dumped, as they do when it says ready itself; the parent's "ready" replaces it) */
		wl_say("init up");
		if (write(nsready[1], "k", 1) != 1) return 18;
		close(nsready[1]);
	} else {
		wl_say("ready pid=%d child=%d pts=%d pts2=%d", (int)getpid(), (int)child, pts, pts2);
	}
	for (;;) {
		wl_wait_check();
		char bad[512] = "";
		struct termios now;
		struct winsize ws;
		if (ptn(20) != pts) strcat(bad, "index,");
		char *sn = ptsname(20);
		if (!sn || strcmp(sn, name)) strcat(bad, "ptsname,");
		if (tcgetattr(21, &now) || (now.c_lflag & ECHO) || !(now.c_lflag & ICANON) || now.c_cc[VINTR] != 2 || now.c_cc[VMIN] != 3) strcat(bad, "termios,");
		memset(&lk, 0, sizeof lk);
		if (ioctl(21, TIOCGLCKTRMIOS, &lk) || lk.c_lflag != ICANON) strcat(bad, "locked-termios,");
		if (ioctl(20, TIOCGWINSZ, &ws) || ws.ws_row != 42 || ws.ws_col != 123 || ws.ws_xpixel != 640 || ws.ws_ypixel != 480) strcat(bad, "winsize,");
		if (iget(20, TIOCGPKT) != 1) strcat(bad, "packet,");
		if (iget(21, TIOCGEXCL) != 1) strcat(bad, "exclusive,");
		if (iget(20, TIOCGPTLCK) != 0) strcat(bad, "unlocked,");
		if (iget(21, TIOCGSID) != (int)getpid()) strcat(bad, "session,");
		if (tcgetpgrp(21) != child) strcat(bad, "foreground,");
		if (getsid(0) != getpid()) strcat(bad, "sid,");
		if (roundtrip(buf, sizeof buf) < 0 || buf[0] != TIOCPKT_DATA || strcmp(buf + 1, want)) strcat(bad, "roundtrip,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
