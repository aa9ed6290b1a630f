/* fifos [unlinked] DIR STATEFILE: FIFOs (named pipes) held across a checkpoint.
 *   DIR/one: fd 20 read-only non-blocking, fd 21 write-only (a child holds it too), 10 bytes
 *            queued ("hello fifo"), the pipe grown to 128 KiB;
 *   DIR/two: fd 22 read-write, 5 bytes queued ("12345").
 * With "unlinked", DIR/two is unlinked once open (crtools refuses that one by name).
 * "ready pid=N"; on SIGUSR1: flags, pipe size, queued counts, both descriptors on the FIFO at
 * its path (same inode), the bytes read back and queued again; the child writes a byte through
 * its fd 21 on request (SIGUSR2) and the parent reads it. "check ok" or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <sys/ioctl.h>

static int queued(int fd) {
	int n = -1;
	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/* fd moved to number at (the original closed) */
static int at(int fd, int n) {
	if (fd < 0 || dup2(fd, n) != n) return -1;
	if (fd != n) close(fd);
	return n;
}

static void on_usr2(int sig) {
	(void)sig;
	if (write(21, "c", 1) != 1) _exit(1);
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int unlinked = argc > 3 && !strcmp(argv[1], "unlinked");
	char one[512], two[512];
	snprintf(one, sizeof one, "%s/one", argv[argc - 2]);
	snprintf(two, sizeof two, "%s/two", argv[argc - 2]);
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	unlink(one);
	unlink(two);
	if (mkfifo(one, 0640) || mkfifo(two, 0600)) return 3;
	if (at(open(one, O_RDONLY | O_NONBLOCK), 20) < 0 || at(open(one, O_WRONLY), 21) < 0) return 4;
	if (at(open(two, O_RDWR), 22) < 0) return 5;
	if (unlinked && unlink(two)) return 9;
	if (fcntl(21, F_SETPIPE_SZ, 128 * 1024) < 0) return 6;
	if (write(21, "hello fifo", 10) != 10 || write(22, "12345", 5) != 5) return 7;
	pid_t child = fork();
	if (child == 0) {
		signal(SIGUSR2, on_usr2);
		for (;;) pause();
	}
	if (child < 0) return 8;

	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		char bad[256] = "", buf[16] = "";
		struct stat a, b, c;
		if ((fcntl(20, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK) || (fcntl(21, F_GETFL) & O_ACCMODE) != O_WRONLY ||
		    (fcntl(22, F_GETFL) & O_ACCMODE) != O_RDWR) strcat(bad, "flags,");
		if (fcntl(20, F_GETPIPE_SZ) != 128 * 1024) strcat(bad, "size,");
		if (stat(one, &a) || fstat(20, &b) || fstat(21, &c) || a.st_ino != b.st_ino || a.st_ino != c.st_ino || !S_ISFIFO(a.st_mode)) strcat(bad, "path,");
		if (queued(20) != 10 || queued(22) != 5) strcat(bad, "queued,");
		if (unlinked && access(two, F_OK) == 0) strcat(bad, "unlinked,");
		if (read(20, buf, sizeof buf) != 10 || memcmp(buf, "hello fifo", 10)) strcat(bad, "data,");
		kill(child, SIGUSR2);
		for (int i = 0; i < 200 && queued(20) < 1; i++) usleep(5000);
		if (read(20, buf, 1) != 1 || buf[0] != 'c') strcat(bad, "child,");
		if (write(21, "hello fifo", 10) != 10) strcat(bad, "again,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
