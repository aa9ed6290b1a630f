/* pidfds [outside] STATEFILE: pidfds held across a checkpoint.
 *   fd 10: a pidfd of the workload itself, non-blocking (PIDFD_NONBLOCK);
 *   fd 11: a pidfd of its child, and fd 12 the same open file (dup);
 *   fd 13: a pidfd of a child that has exited and been reaped ("Pid: -1");
 *   fds 16 and 17: two pidfds (two open files, one inode) of another child, killed and reaped
 *   once the child below has them too: inherited at 16 and 17, opened by itself at 18;
 *   the child holds at fd 14 a pidfd of its parent.
 * With "outside", fd 15 is a pidfd of init (pid 1), outside any tree the test dumps.
 * "ready pid=N child=C"; on SIGUSR1 each is checked: fdinfo's Pid, flags, fds 11/12 one open
 * file (kcmp), the child's pidfd not readable (alive: signal 0 goes through pidfd_send_signal),
 * the dead ones readable, the pidfds of one gone process on one inode (another than the other
 * gone one's) but not one open file; the child checks its own and answers through a pipe.
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

static ino_t ino_of(int fd) {
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
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
	int ask[2], answer[2], held[2];
	if (pipe(ask) || pipe(answer) || pipe(held)) return 3;
	pid_t gone2 = fork();
	if (gone2 == 0)
		for (;;) pause();
	if (gone2 < 0 || place(pidfd_open(gone2, 0), 16) < 0 || place(pidfd_open(gone2, 0), 17) < 0) return 10;
	pid_t child = fork();
	if (child == 0) {
		/* the child: a pidfd of its parent, one of gone2 of its own; on each byte from the parent, its verdict */
		if (place(pidfd_open(me, 0), 14) < 0 || place(pidfd_open(gone2, 0), 18) < 0 || write(held[1], "h", 1) != 1) _exit(1);
		char b;
		while (read(ask[0], &b, 1) == 1) {
			char v = fdinfo_pid(14) == me && syscall(SYS_pidfd_send_signal, 14, 0, NULL, 0) == 0 && !readable(14) &&
					 fdinfo_pid(18) == -1 && readable(18) && ino_of(18) == ino_of(16) && ino_of(18) == ino_of(17) &&
					 syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 16, 18) != 0
				 ? 'y'
				 : 'n';
			if (write(answer[1], &v, 1) != 1) _exit(1);
		}
		_exit(0);
	}
	if (child < 0) return 4;
	char h;
	if (read(held[0], &h, 1) != 1 || kill(gone2, SIGKILL) || waitpid(gone2, NULL, 0) != gone2) return 11;
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
		if (fdinfo_pid(16) != -1 || fdinfo_pid(17) != -1 || !readable(16) || !readable(17)) strcat(bad, "gone2,");
		if (ino_of(16) != ino_of(17) || ino_of(16) == ino_of(13) || !ino_of(16)) strcat(bad, "gone-inodes,");
		if (syscall(SYS_kcmp, me, me, KCMP_FILE, 16, 17) == 0) strcat(bad, "gone2-files,");
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
