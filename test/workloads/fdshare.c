/* fdshare: descriptor tables shared between processes (clone with CLONE_FILES, no CLONE_VM).
 *   root R ── C (shares R's table) ── G (shares it too: one table for three processes)
 *          └─ N (an ordinary fork: a copy of its own)
 * Before the clones R opens a file at fd 10 and reads 3 bytes of it (offset 3). C, once made,
 * opens a pipe at fds 20/21 and writes "ping" into it: R sees those descriptors (same table).
 * N closes fd 10 in its copy and opens /dev/null at fd 11: R's table keeps fd 10, has no fd 11.
 * "ready pid=R child=C grandchild=G other=N".
 * On SIGUSR1 R checks: kcmp says R, C and G share one table and N has another; fd 10 is open
 * at offset 3 and fd 11 is not; fds 20/21 are the pipe and "ping" waits in it (peeked with
 * FIONREAD); a descriptor R opens now (fd 30) is seen by C, which closes it on R's request
 * (a message through the pipe: "close"), after which R sees fd 30 closed. Children die with R.
 * `fdshare pidfd STATE`: R also holds a pidfd of itself at fd 50 (refused at dump). */
#define _GNU_SOURCE
#include "workload.h"
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define KCMP_FILES 2

static int kcmp_files(pid_t a, pid_t b) { return (int)syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0); }

/* fork-like clone that shares the table (a raw clone without a new stack: the child returns here) */
static pid_t clone_files(void) { return (pid_t)syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0); }

/* C and G: wait for "close" messages on the control pipe (fd 40) and close fd 30 when asked */
static void sharer(pid_t parent) {
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) _exit(0);
	for (;;) {
		char buf[8];
		ssize_t n = read(40, buf, sizeof buf);
		if (n == 5 && !memcmp(buf, "close", 5)) {
			close(30);
			if (write(42, "x", 1) != 1) _exit(3);
		} else if (n <= 0) {
			usleep(100000);
		}
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	pid_t root = getpid();

	char path[] = "/tmp/crtools-fdshare-XXXXXX";
	int f = mkstemp(path);
	if (f < 0 || write(f, "abcdefgh", 8) != 8) return 3;
	if (dup2(f, 10) != 10) return 3;
	close(f);
	unlink(path);
	if (lseek(10, 3, SEEK_SET) != 3) return 3;
	/* control: fd 40/41 R → sharer, 42/43 sharer → R (made before the clones: shared anyway) */
	int ctl[2], ack[2];
	if (pipe(ctl) || pipe(ack)) return 4;
	if (dup2(ctl[0], 40) != 40 || dup2(ctl[1], 41) != 41 || dup2(ack[1], 42) != 42 || dup2(ack[0], 43) != 43) return 4;
	close(ctl[0]); close(ctl[1]); close(ack[0]); close(ack[1]);

	pid_t c = clone_files();
	if (c < 0) return 5;
	if (c == 0) {
		pid_t me = getpid();
		pid_t g = clone_files();
		if (g < 0) _exit(5);
		if (g == 0) sharer(me);
		/* C: the pipe at 20/21 (R's table gets it), "ping" queued, and G's pid for R */
		int p[2];
		if (pipe(p) || dup2(p[0], 20) != 20 || dup2(p[1], 21) != 21) _exit(6);
		close(p[0]); close(p[1]);
		if (write(21, "ping", 4) != 4) _exit(6);
		char pidbuf[16];
		int l = snprintf(pidbuf, sizeof pidbuf, "%d", (int)g);
		int pf = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600); /* the file name is free again */
		if (pf < 0 || write(pf, pidbuf, l) != l) _exit(6);
		close(pf);
		sharer(root);
	}
	/* wait for C's pipe and G's pid */
	pid_t g = 0;
	for (int i = 0; i < 500 && !g; i++) {
		int pf = open(path, O_RDONLY);
		char buf[16] = "";
		if (pf >= 0) {
			if (read(pf, buf, sizeof buf - 1) > 0) g = atoi(buf);
			close(pf);
		}
		if (!g) usleep(10000);
	}
	unlink(path);
	if (!g || fcntl(20, F_GETFD) < 0) return 7;

	pid_t n = fork();
	if (n < 0) return 8;
	if (n == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(10);
		int d = open("/dev/null", O_RDONLY);
		if (d < 0 || dup2(d, 11) != 11) _exit(8);
		if (d != 11) close(d);
		for (;;) pause();
	}
	usleep(50000);
	/* `fdshare pidfd STATE`: a pidfd of the root at fd 50 of the shared table (refused at dump) */
	if (argc > 2 && !strcmp(argv[1], "pidfd")) {
		int pfd = (int)syscall(SYS_pidfd_open, root, 0);
		if (pfd < 0 || dup2(pfd, 50) != 50) return 9;
		close(pfd);
	}

	wl_say("ready pid=%d child=%d grandchild=%d other=%d", (int)root, (int)c, (int)g, (int)n);
	for (;;) {
		wl_wait_check();
		char bad[256] = "";
		if (kcmp_files(root, c) != 0) strcat(bad, "share-c,");
		if (kcmp_files(root, g) != 0) strcat(bad, "share-g,");
		if (kcmp_files(root, n) == 0) strcat(bad, "share-n,");
		if (lseek(10, 0, SEEK_CUR) != 3) strcat(bad, "fd10,");
		if (fcntl(11, F_GETFD) >= 0) strcat(bad, "fd11,");
		int q = -1;
		if (ioctl(20, FIONREAD, &q) || q != 4) strcat(bad, "pipe,");
		/* a descriptor made now, closed by a sharer: seen both ways */
		int d = open("/dev/null", O_RDONLY);
		if (d < 0 || dup2(d, 30) != 30) strcat(bad, "open30,");
		if (d != 30) close(d);
		if (write(41, "close", 5) != 5) strcat(bad, "ctl,");
		char x;
		int got = 0;
		for (int i = 0; i < 300 && !got; i++) {
			int avail = 0;
			if (!ioctl(43, FIONREAD, &avail) && avail > 0 && read(43, &x, 1) == 1) got = 1;
			else usleep(10000);
		}
		if (!got) strcat(bad, "ack,");
		else if (fcntl(30, F_GETFD) >= 0) strcat(bad, "closed30,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
