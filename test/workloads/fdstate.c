/* fdstate [owner|async|outside] STATEFILE: what an open file description carries besides its
 * kind, set on pipes: the read end of pipe A non-blocking, pipe B grown to 1 MiB
 * (F_SETPIPE_SZ) holding 3000 bytes; pipe H's ends each at three descriptors: h[0], h[1], a dup of
 * h[1] (one open file with it: non-blocking both) and a read and a write end opened again through
 * /proc/self/fd (open files of their own: the read one non-blocking, the write one not, h[0] not).
 * With "owner" or "async", the read ends of more pipes have I/O signal settings:
 *   C: owner this process (F_OWNER_PID), signal SIGRTMIN+1 (F_SETSIG);
 *   D: owner one thread of it (F_OWNER_TID), SIGIO;
 *   E: owner the process group of a child that leads its own (F_OWNER_PGRP), SIGRTMIN+2;
 *   F: no owner, signal SIGRTMIN+3 only.
 * With "async", C, D and E also have O_ASYNC, and each check writes a byte into C, D and E and
 * waits for the signal to arrive where it should: on this process with si_fd = C's read end,
 * on that very thread, and in the child (which answers through pipe R).
 * With "outside", pipe G's owner is pid 1, outside the tree (a dump refuses it).
 * On SIGUSR1 each is checked as set: "check ok" or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

static volatile sig_atomic_t c_hits, c_fd = -1, d_tid;

static void on_c(int sig, siginfo_t *si, void *uc) {
	(void)sig, (void)uc;
	c_fd = si->si_fd;
	c_hits++;
}

static void on_d(int sig) {
	(void)sig;
	d_tid = (int)syscall(SYS_gettid);
}

static int report = -1;
static void on_e(int sig) {
	(void)sig;
	char x = 'e';
	if (write(report, &x, 1) != 1) _exit(3);
}

static volatile int thread_tid;
static void *idle_thread(void *arg) {
	(void)arg;
	thread_tid = (int)syscall(SYS_gettid);
	for (;;) pause();
	return 0;
}

static void handle(int sig, void (*h)(int), void (*hi)(int, siginfo_t *, void *)) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (hi) {
		sa.sa_sigaction = hi;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sa.sa_handler = h;
		sa.sa_flags = SA_RESTART;
	}
	sigaction(sig, &sa, 0);
}

/* the owner as set (no owner: pid 0, whatever type the kernel reports then) */
static int owner_is(int fd, int type, int pid) {
	struct f_owner_ex got = {0};
	return !fcntl(fd, F_GETOWN_EX, &got) && got.pid == pid && (!pid || got.type == type);
}

/* until *v says so, for at most 2 s */
static int wait_for(volatile sig_atomic_t *v, int want) {
	for (int i = 0; i < 200; i++) {
		if (*v == want) return 1;
		usleep(10000);
	}
	return *v == want;
}

/* kcmp KCMP_FILE: are descriptors x and y of this process one open file description? */
static int same_file(int x, int y) { return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, x, y) == 0; }

/* pipe H as described above: h[0], h[1], hd = dup(h[1]), hr and hw opened again */
static int h[2], hd, hr, hw;
static int reopen(int fd, int flags) {
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return open(path, flags);
}

static const char *pipe_h_bad(void) {
	char x = 'h';
	int n = 0;
	if (!same_file(h[1], hd) || same_file(h[0], hr) || same_file(h[1], hw) || same_file(hw, hd)) return "pipe-h-files";
	if ((fcntl(h[1], F_GETFL) & (O_NONBLOCK | O_ACCMODE)) != (O_NONBLOCK | O_WRONLY) || (fcntl(hd, F_GETFL) & O_NONBLOCK) == 0) return "pipe-h-dup-flags";
	if ((fcntl(hr, F_GETFL) & (O_NONBLOCK | O_ACCMODE)) != (O_NONBLOCK | O_RDONLY)) return "pipe-h-reopened-r-flags";
	if ((fcntl(hw, F_GETFL) & (O_NONBLOCK | O_ACCMODE)) != O_WRONLY || (fcntl(h[0], F_GETFL) & O_NONBLOCK)) return "pipe-h-blocking-flags";
	/* one pipe still: a byte in through the reopened write end, out through the reopened read end */
	if (write(hw, &x, 1) != 1 || ioctl(h[0], FIONREAD, &n) || n != 1 || read(hr, &x, 1) != 1 || x != 'h') return "pipe-h-data";
	return 0;
}

static int poke(int w, int r) {
	char x = 'x';
	return write(w, &x, 1) == 1 && read(r, &x, 1) == 1;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *mode = argc > 2 ? argv[1] : "";
	int async = !strcmp(mode, "async"), owner = async || !strcmp(mode, "owner"), outside = !strcmp(mode, "outside");
	wl_detach(argv[argc - 1]);
	int a[2], b[2], c[2], d[2], e[2], f[2], g[2], r[2];
	if (pipe(a) || pipe(b) || pipe(c) || pipe(d) || pipe(e) || pipe(f) || pipe(g) || pipe(r)) { wl_say("error pipe"); return 1; }
	if (fcntl(a[0], F_SETFL, O_NONBLOCK)) return 1;
	if (fcntl(b[1], F_SETPIPE_SZ, 1 << 20) < (1 << 20)) { wl_say("error pipe size"); return 1; }
	char buf[3000];
	memset(buf, 'q', sizeof buf);
	if (write(b[1], buf, sizeof buf) != sizeof buf) return 1;
	if (pipe(h) || (hd = dup(h[1])) < 0 || (hr = reopen(h[0], O_RDONLY)) < 0 || (hw = reopen(h[1], O_WRONLY)) < 0) { wl_say("error pipe h"); return 1; }
	if (fcntl(h[1], F_SETFL, O_NONBLOCK) || fcntl(hr, F_SETFL, O_NONBLOCK)) return 1;
	if (pipe_h_bad()) { wl_say("error pipe h: %s", pipe_h_bad()); return 1; }
	handle(SIGRTMIN + 1, 0, on_c);
	handle(SIGIO, on_d, 0);
	pid_t child = 0;
	if (owner) {
		/* the child leads its own process group, the owner of E's signals */
		report = r[1];
		child = fork();
		if (child < 0) { wl_say("error fork"); return 1; }
		if (child == 0) {
			handle(SIGRTMIN + 2, on_e, 0);
			setpgid(0, 0);
			for (;;) pause();
		}
		setpgid(child, child);
		pthread_t th;
		if (pthread_create(&th, 0, idle_thread, 0)) { wl_say("error thread"); return 1; }
		while (!thread_tid) usleep(1000);
		struct f_owner_ex oc = {.type = F_OWNER_PID, .pid = getpid()}, od = {.type = F_OWNER_TID, .pid = thread_tid},
				  oe = {.type = F_OWNER_PGRP, .pid = child};
		if (fcntl(c[0], F_SETOWN_EX, &oc) || fcntl(c[0], F_SETSIG, SIGRTMIN + 1) || fcntl(d[0], F_SETOWN_EX, &od) ||
		    fcntl(e[0], F_SETOWN_EX, &oe) || fcntl(e[0], F_SETSIG, SIGRTMIN + 2) || fcntl(f[0], F_SETSIG, SIGRTMIN + 3)) {
			wl_say("error owner %d", errno);
			return 1;
		}
		if (async && (fcntl(c[0], F_SETFL, O_ASYNC) || fcntl(d[0], F_SETFL, O_ASYNC) || fcntl(e[0], F_SETFL, O_ASYNC))) { wl_say("error async"); return 1; }
	}
	struct f_owner_ex og = {.type = F_OWNER_PID, .pid = 1};
	if (outside && fcntl(g[0], F_SETOWN_EX, &og)) { wl_say("error outside"); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		int n = 0;
		if (!(fcntl(a[0], F_GETFL) & O_NONBLOCK)) bad = "nonblock";
		else if ((bad = pipe_h_bad())) {}
		else if (fcntl(b[0], F_GETPIPE_SZ) != (1 << 20)) bad = "pipe-size";
		else if (ioctl(b[0], FIONREAD, &n) || n != 3000) bad = "pipe-data";
		else if (owner && !owner_is(c[0], F_OWNER_PID, getpid())) bad = "owner-pid";
		else if (owner && fcntl(c[0], F_GETSIG) != SIGRTMIN + 1) bad = "sig-pid";
		else if (owner && !owner_is(d[0], F_OWNER_TID, thread_tid)) bad = "owner-tid";
		else if (owner && fcntl(d[0], F_GETSIG) != 0) bad = "sig-tid";
		else if (owner && !owner_is(e[0], F_OWNER_PGRP, child)) bad = "owner-pgrp";
		else if (owner && fcntl(e[0], F_GETSIG) != SIGRTMIN + 2) bad = "sig-pgrp";
		else if (owner && (!owner_is(f[0], F_OWNER_PID, 0) || fcntl(f[0], F_GETSIG) != SIGRTMIN + 3)) bad = "sig-only";
		else if (!(fcntl(c[0], F_GETFL) & O_ASYNC) != !async || !(fcntl(d[0], F_GETFL) & O_ASYNC) != !async ||
			 !(fcntl(e[0], F_GETFL) & O_ASYNC) != !async || (fcntl(f[0], F_GETFL) & O_ASYNC))
			bad = "async";
		else if (outside && !owner_is(g[0], F_OWNER_PID, 1)) bad = "owner-outside";
		else if (async) {
			/* the signals themselves: a byte into each pipe */
			int hits = c_hits;
			struct pollfd p = {.fd = r[0], .events = POLLIN};
			char x;
			d_tid = 0;
			if (!poke(c[1], c[0]) || !wait_for(&c_hits, hits + 1)) bad = "sigio-pid";
			else if (c_fd != c[0]) bad = "sigio-pid-fd";
			else if (!poke(d[1], d[0]) || !wait_for(&d_tid, thread_tid)) bad = "sigio-tid";
			else if (!poke(e[1], e[0]) || poll(&p, 1, 2000) != 1 || read(r[0], &x, 1) != 1) bad = "sigio-pgrp";
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
