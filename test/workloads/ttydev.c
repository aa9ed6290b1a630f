/* ttydev MODE DIR STATEFILE: terminals other than pty pairs of the tree's own.
 *  console  DIR/console made with mknod (5:1, as zdtm static/console) and opened read-only at fd 3;
 *  vt       DIR/tty5 made with mknod (4:5, a virtual console, as zdtm static/vt), opened read-only at fd 3;
 *  vtctty   the same opened without O_NOCTTY by the session leader: its controlling terminal;
 *  vt2      the same, and DIR/tty6 (4:6, a second virtual console) at fd 4 (checked: still open);
 *  serial   DIR/ttyS0 made with mknod (4:64, a UART serial line), opened read-write, non-blocking
 *           at fd 3 (no byte is ever written to it), set to 38400 baud, ICANON, ECHO and ICRNL off,
 *           VMIN 3, VTIME 7, window size 41x97 (the test puts the device's own settings back);
 *  ext      a pty whose master stays outside the tree: the first process (the holder, pid H)
 *           keeps the master and drains what arrives there; its child (pid C, the tree to dump)
 *           leads a session of its own whose controlling terminal is the slave, on its fds 0, 1
 *           and 2 (one open file), window size 33x101 and ECHO off ("ready pid=C holder=H pts=PATH").
 * "ready pid=P" (P: the task to dump) once set up, or "error ...". On SIGUSR1 P checks that its
 * terminal is the same device at the same path, with the termios and window size it had (and for
 * serial its file status flags), and for
 * ext that it is still its session's controlling terminal with its own group in the foreground
 * and that a line written to it goes through: "check ok MODE" or "check bad what=...". */
#include "workload.h"
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

static struct termios saved_t;
static int saved_fl, check_fl;
static struct winsize saved_w;
static dev_t saved_rdev;
static char saved_path[4096];

static const char *same_tty(int fd) {
	struct stat st;
	struct termios t;
	struct winsize w;
	char link[64], path[4096];
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != saved_rdev) return "rdev";
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 0) return "readlink";
	path[n] = 0;
	if (strcmp(path, saved_path)) return "path";
	if (tcgetattr(fd, &t)) return "tcgetattr";
	if (t.c_iflag != saved_t.c_iflag || t.c_oflag != saved_t.c_oflag || t.c_cflag != saved_t.c_cflag || t.c_lflag != saved_t.c_lflag || memcmp(t.c_cc, saved_t.c_cc, NCCS)) return "termios";
	if (ioctl(fd, TIOCGWINSZ, &w) || memcmp(&w, &saved_w, sizeof w)) return "winsize";
	if (check_fl && fcntl(fd, F_GETFL) != saved_fl) return "flags";
	return 0;
}

static void save(int fd) {
	struct stat st;
	char link[64];
	fstat(fd, &st);
	saved_rdev = st.st_rdev;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, saved_path, sizeof saved_path - 1);
	saved_path[n < 0 ? 0 : n] = 0;
	tcgetattr(fd, &saved_t);
	ioctl(fd, TIOCGWINSZ, &saved_w);
	saved_fl = fcntl(fd, F_GETFL);
}

/* a serial line's own settings, none of them its defaults (no byte written, none echoed) */
static int set_serial(int fd) {
	struct termios t;
	struct winsize w = {.ws_row = 41, .ws_col = 97};
	if (tcgetattr(fd, &t)) return -1;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHOE | ECHOK);
	t.c_iflag &= ~(tcflag_t)ICRNL;
	t.c_cflag |= CLOCAL;
	t.c_cc[VMIN] = 3;
	t.c_cc[VTIME] = 7;
	if (cfsetispeed(&t, B38400) || cfsetospeed(&t, B38400) || tcsetattr(fd, TCSANOW, &t)) return -1;
	return ioctl(fd, TIOCSWINSZ, &w);
}

static int ext(void) {
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m)) { wl_say("error openpt %d", errno); return 1; }
	char pts[64];
	if (ptsname_r(m, pts, sizeof pts)) { wl_say("error ptsname"); return 1; }
	pid_t holder = getpid();
	pid_t c = fork();
	if (c < 0) return 1;
	if (c == 0) {
		close(m);
		setsid();
		int s = open(pts, O_RDWR); /* a session leader without a terminal: the slave becomes it */
		if (s < 0) { wl_say("error open slave %d", errno); _exit(1); }
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2) close(s);
		struct winsize w = {.ws_row = 33, .ws_col = 101};
		struct termios t;
		if (ioctl(0, TIOCSWINSZ, &w) || tcgetattr(0, &t)) { wl_say("error winsize"); _exit(1); }
		t.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(0, TCSANOW, &t)) { wl_say("error tcsetattr"); _exit(1); }
		save(0);
		wl_handle_usr1();
		wl_say("ready pid=%d holder=%d pts=%s", (int)getpid(), (int)holder, pts);
		for (;;) {
			wl_wait_check();
			const char *bad = 0;
			pid_t sid = 0;
			struct stat a, b;
			for (int fd = 0; fd < 3 && !bad; fd++) bad = same_tty(fd);
			if (!bad && (ioctl(0, TIOCGSID, &sid) || sid != getpid())) bad = "ctty";
			if (!bad && tcgetpgrp(0) != getpgrp()) bad = "foreground";
			if (!bad && (fstat(0, &a) || fstat(2, &b) || a.st_ino != b.st_ino)) bad = "fds";
			if (!bad && (fcntl(0, F_GETFL) & O_ACCMODE) != O_RDWR) bad = "flags";
			if (!bad && write(1, "tick\n", 5) != 5) bad = "write";
			if (bad) wl_say("check bad what=%s", bad);
			else wl_say("check ok ext");
		}
	}
	/* the holder: what the child writes is read off the master (EIO while no slave is open) */
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		char buf[256];
		ssize_t n = read(m, buf, sizeof buf);
		if (n <= 0) usleep(10000);
	}
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1], *dir = argv[2];
	wl_detach(argv[3]);
	if (!strcmp(mode, "ext")) return ext();
	int ctty = !strcmp(mode, "vtctty"), two = !strcmp(mode, "vt2");
	int vt = ctty || two || !strcmp(mode, "vt"), serial = !strcmp(mode, "serial");
	if (!vt && !serial && strcmp(mode, "console")) { wl_say("error mode"); return 2; }
	char path[4096];
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/%s", dir, vt ? "tty5" : serial ? "ttyS0" : "console");
	unlink(path);
	if (mknod(path, S_IFCHR | 0600, vt ? makedev(4, 5) : serial ? makedev(4, 64) : makedev(5, 1))) { wl_say("error mknod %d", errno); return 1; }
	int fd = open(path, serial ? O_RDWR | O_NONBLOCK | O_NOCTTY : O_RDONLY | (ctty ? 0 : O_NOCTTY));
	if (fd < 0) { wl_say("error open %d", errno); return 1; }
	if (fd != 3) { dup2(fd, 3); close(fd); }
	if (serial && set_serial(3)) { wl_say("error serial settings %d", errno); return 1; }
	check_fl = serial;
	save(3);
	if (two) {
		snprintf(path, sizeof path, "%s/tty6", dir);
		unlink(path);
		if (mknod(path, S_IFCHR | 0600, makedev(4, 6))) { wl_say("error mknod %d", errno); return 1; }
		int fd2 = open(path, O_RDONLY | O_NOCTTY);
		if (fd2 < 0) { wl_say("error open %d", errno); return 1; }
		if (fd2 != 4) { dup2(fd2, 4); close(fd2); }
	}
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = same_tty(3);
		pid_t sid = 0;
		if (!bad && ctty && (ioctl(3, TIOCGSID, &sid) || sid != getpid())) bad = "ctty";
		if (!bad && ctty && tcgetpgrp(3) != getpgrp()) bad = "foreground";
		if (!bad && !ctty && ioctl(3, TIOCGSID, &sid) == 0) bad = "ctty";
		if (!bad && two && !isatty(4)) bad = "vt2";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok %s", mode);
	}
}
