/* pidfds [outside] STATEFILE: pidfds held across a checkpoint.
 *   fd 10: a pidfd of the workload itself, non-blocking (PIDFD_NONBLOCK);
 *   fd 11: a pidfd of its child, and fd 12 the same open file (dup);
 *   fd 13: a pidfd of a child that has exited and been reaped ("Pid: -1");
 *   the child holds at fd 14 a pidfd of its parent.
 * With "outside", fd 15 is a pidfd of init (pid 1), outside any tree the test dumps.
 * "ready pid=N child=C"; on SIGUSR1 each is checked: fdinfo's Pid, flags, fds 11/12 one open
 * file (kcmp), the child's pidfd not readable (alive: signal 0 goes through pidfd_send_signal),
 * the dead one readable; the child checks its own and answers through a pipe.
 * "check ok" or "check bad what=NAME,...". */
#define _GNU_SOURCE
#include "workload.h"
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/syscall.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }

/* fdinfo's "Pid:" of descriptor fd of this process (-2: not found) */
static long fdinfo_pid(int fd) {
	char path[64], line[256];
	long v = -2;
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f) return -2;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Pid: %ld", &v) == 1) break;
	fclose(f);
	return v;
}

static int readable(int fd) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int place(int fd, int at) {
	if (fd < 0 || dup2(fd, at) != at) return -1;
	if (fd != at) close(fd);
	return at;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int outside = argc > 2 && !strcmp(argv[1], "outside");
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();

	pid_t me = getpid();
	int ask[2], answer[2];
	if (pipe(ask) || pipe(answer)) return 3;
	pid_t child = fork();
	if (child == 0) {
		/* the child: a pidfd of its parent; on each byte from the parent, its verdict */
		if (place(pidfd_open(me, 0), 14) < 0) _exit(1);
		char b;
		while (read(ask[0], &b, 1) == 1) {
			char v = fdinfo_pid(14) == me && syscall(SYS_pidfd_send_signal, 14, 0, NULL, 0) == 0 && !readable(14) ? 'y' : 'n';
			if (write(answer[1], &v, 1) != 1) _exit(1);
		}
		_exit(0);
	}
	if (child < 0) return 4;
	pid_t gone = fork();
	if (gone == 0) _exit(0);
	if (place(pidfd_open(me, PIDFD_NONBLOCK), 10) < 0) return 5;
	if (place(pidfd_open(child, 0), 11) < 0 || dup2(11, 12) != 12) return 6;
	if (place(pidfd_open(gone, 0), 13) < 0) return 7;
	if (waitpid(gone, NULL, 0) != gone) return 8;
	if (outside && place(pidfd_open(1, 0), 15) < 0) return 9;

	wl_say("ready pid=%d child=%d", (int)me, (int)child);
	for (;;) {
		wl_wait_check();
		char bad[256] = "";
		if (fdinfo_pid(10) != me || !(fcntl(10, F_GETFL) & O_NONBLOCK)) strcat(bad, "self,");
		if (fdinfo_pid(11) != child || fdinfo_pid(12) != child || (fcntl(11, F_GETFL) & O_NONBLOCK)) strcat(bad, "child,");
		if (syscall(SYS_kcmp, me, me, KCMP_FILE, 11, 12) != 0) strcat(bad, "shared,");
		if (readable(11) || syscall(SYS_pidfd_send_signal, 11, 0, NULL, 0) != 0) strcat(bad, "alive,");
		if (fdinfo_pid(13) != -1 || !readable(13)) strcat(bad, "gone,");
		char b = 'c', v = 0;
		if (write(ask[1], &b, 1) != 1 || read(answer[0], &v, 1) != 1 || v != 'y') strcat(bad, "parent,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
