/* procfiles [MODE] STATEFILE: descriptors on /proc files of tasks of the tree other than the root,
 * and on namespaces (nsfs), held across a checkpoint. The workload (the root) forks a child with a
 * second thread; the child forks a grandchild.
 *   root fd 3: /proc/CHILD/status, read-only, at offset 5;
 *   root fd 4: /proc/CHILD/task/THREAD/comm (the child's second thread, named "procthr");
 *   root fd 5: /proc/self/ns/net, fd 6: /proc/CHILD/ns/uts (namespaces the tree lives in);
 *   child fd 7: /proc/self/stat opened by the child (close-on-exec) at offset 7, inherited by the
 *   grandchild: one open file in two tasks;
 *   grandchild fd 8: /proc/CHILD/task/THREAD/stat; grandchild fd 5: /proc/CHILD/status, opened
 *   at its lowest free number (0-4 are inherited: stdio and the ready pipe): the number the
 *   restore's own descriptors in a task take first (a pidfd on the root once took it, and closing
 *   it took the file away);
 *   child fd 11: its /proc/self/mountinfo, watched (EPOLLPRI, data 0x77) by its epoll at fd 12;
 *   root fd 10: /proc/self/task/RTHREAD/comm of a thread of its own ("rootthr"): the root's
 *   threads, too, exist only once the files are opened.
 * MODE "criu": without the thread's files (fd 4, the grandchild's fd 8): CRIU 4.2 opens a task's
 * files before it makes its threads, so it cannot restore those.
 * MODE "netns": fd 9 of the root holds the network namespace of a helper that unshared one and
 * was reaped: no task of the tree lives in it (the dump refuses it).
 * MODE "gone": fd 9 of the root holds /proc/HELPER/status, fd 13 the directory /proc/HELPER, of
 * a helper reaped since (CRIU's dead pid): on SIGUSR1 both still name it (fd 13 shown deleted,
 * as the kernel shows a directory of a process gone) and reading fd 9 fails as it did (ESRCH).
 * MODE "criu-gone": "gone" without the thread's files (as "criu").
 * MODE "inflight": a copy of fd 3 (the child's status) waits in the queue of a socketpair of the
 * root's (SCM_RIGHTS): the restore sends the queues before such files exist (the dump refuses it).
 * "ready pid=N child=C grandchild=G"; on SIGUSR1: fd 3 reads C's status from offset 5, fd 4
 * reads "procthr", fds 5 and 6 are the namespaces (inodes) of /proc/self/ns/net and C's uts,
 * C's and G's fd 7 one open file (kcmp) at offset 7 with O_CLOEXEC, naming C (its stat begins with
 * "C ("), G's fd 8 naming C's thread, G's fd 5 C's status. "check ok" or "check bad what=NAME,...". */
#define _GNU_SOURCE
#include "workload.h"
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <errno.h>

static volatile pid_t thread_tid;

static void *thread_main(void *arg) {
	prctl(PR_SET_NAME, arg ? (const char *)arg : "procthr", 0, 0, 0);
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return 0;
}

static int place(int fd, int at) {
	if (fd < 0 || dup2(fd, at) != at) return -1;
	if (fd != at) close(fd);
	return at;
}

static int openf(int at, int flags, const char *fmt, ...) {
	char p[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p, sizeof p, fmt, ap);
	va_end(ap);
	return place(open(p, flags), at);
}

/* "pos:" (decimal) or "flags:" (octal) of /proc/PID/fdinfo/FD (-1: not read) */
static long fdinfo_field(pid_t pid, int fd, const char *name) {
	char p[64], line[256];
	long v = -1;
	snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", (int)pid, fd);
	FILE *f = fopen(p, "r");
	if (!f) return -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, name, strlen(name))) continue;
		v = strtol(line + strlen(name), 0, strcmp(name, "flags:") ? 10 : 8);
		break;
	}
	fclose(f);
	return v;
}

/* does the epoll at fd epfd of task pid watch target tfd for events (the kernel adds EPOLLERR and EPOLLHUP) with data? */
static int watches(pid_t pid, int epfd, int tfd, unsigned events, unsigned long long data) {
	char p[64], line[256];
	int found = 0;
	snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", (int)pid, epfd);
	FILE *f = fopen(p, "r");
	if (!f) return 0;
	while (fgets(line, sizeof line, f)) {
		int t;
		unsigned e;
		unsigned long long d;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &t, &e, &d) == 3 && t == tfd && (e & events) == events && d == data) found = 1;
	}
	fclose(f);
	return found;
}

/* does what fd reads at offset off begin with want? */
static int starts(int fd, off_t off, const char *want) {
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof buf - 1, off);
	if (n <= 0) return 0;
	buf[n] = 0;
	return strncmp(buf, want, strlen(want)) == 0;
}

/* "/proc/PID/status" (a static buffer) */
static const char *p5(pid_t pid) {
	static char p[64];
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	return p;
}

static ino_t ino_of(int fd) {
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

static ino_t ino_at(const char *fmt, pid_t pid) {
	char p[64];
	struct stat st;
	snprintf(p, sizeof p, fmt, (int)pid);
	return stat(p, &st) ? 0 : st.st_ino;
}

/* mode gone: the helper reaped since */
static pid_t gone;

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *mode = argc > 2 ? argv[1] : "";
	int threads = strncmp(mode, "criu", 4) != 0;
	int dead = !strcmp(mode, "gone") || !strcmp(mode, "criu-gone");
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();

	int ready[2];
	if (pipe(ready)) return 3;
	pid_t child = fork();
	if (child == 0) {
		pthread_t t;
		if (pthread_create(&t, 0, thread_main, 0)) _exit(1);
		while (!thread_tid) usleep(1000);
		if (openf(7, O_RDONLY, "/proc/self/stat") < 0 || fcntl(7, F_SETFD, FD_CLOEXEC) || lseek(7, 7, SEEK_SET) != 7) _exit(1);
		struct epoll_event ev = { .events = EPOLLPRI, .data.u64 = 0x77 };
		if (openf(11, O_RDONLY, "/proc/self/mountinfo") < 0 || place(epoll_create1(0), 12) < 0 || epoll_ctl(12, EPOLL_CTL_ADD, 11, &ev)) _exit(1);
		pid_t me = getpid(), tid = thread_tid;
		pid_t g = fork();
		if (g == 0) {
			if (threads && openf(8, O_RDONLY, "/proc/%d/task/%d/stat", (int)me, (int)tid) < 0) _exit(1);
			if (open(p5(me), O_RDONLY) != 5) _exit(1);
			if (write(ready[1], &tid, sizeof tid) != sizeof tid) _exit(1);
			for (;;) pause();
		}
		for (;;) pause();
	}
	if (child < 0) return 4;
	pid_t tid = 0;
	if (read(ready[0], &tid, sizeof tid) != sizeof tid) return 5;
	/* the grandchild: the child's only child */
	pid_t grand = 0;
	{
		char p[64], buf[256];
		snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)child, (int)child);
		FILE *f = fopen(p, "r");
		if (!f || !fgets(buf, sizeof buf, f)) return 6;
		fclose(f);
		grand = atoi(buf);
	}
	if (openf(3, O_RDONLY, "/proc/%d/status", (int)child) < 0 || lseek(3, 5, SEEK_SET) != 5) return 7;
	if (threads && openf(4, O_RDONLY, "/proc/%d/task/%d/comm", (int)child, (int)tid) < 0) return 8;
	if (openf(5, O_RDONLY, "/proc/self/ns/net") < 0 || openf(6, O_RDONLY, "/proc/%d/ns/uts", (int)child) < 0) return 9;
	if (threads) {
		pthread_t t;
		thread_tid = 0;
		if (pthread_create(&t, 0, thread_main, "rootthr")) return 13;
		while (!thread_tid) usleep(1000);
		if (openf(10, O_RDONLY, "/proc/self/task/%d/comm", (int)thread_tid) < 0) return 14;
	}
	if (!strcmp(mode, "netns") || dead) {
		int p2[2];
		if (pipe(p2)) return 10;
		pid_t h = fork();
		if (h == 0) {
			char c = 'k';
			if (!strcmp(mode, "netns") && unshare(CLONE_NEWNET)) _exit(1);
			if (write(p2[1], &c, 1) != 1) _exit(1);
			for (;;) pause();
		}
		char c;
		if (h < 0 || read(p2[0], &c, 1) != 1) return 11;
		if (openf(9, O_RDONLY, !strcmp(mode, "netns") ? "/proc/%d/ns/net" : "/proc/%d/status", (int)h) < 0) return 12;
		if (dead && openf(13, O_RDONLY | O_DIRECTORY, "/proc/%d", (int)h) < 0) return 12;
		kill(h, SIGKILL);
		waitpid(h, 0, 0);
		if (dead) gone = h;
	}

	if (!strcmp(mode, "inflight")) {
		int sp[2];
		char byte = 'x', cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &(int){3}, sizeof(int));
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || sendmsg(sp[0], &m, 0) != 1) return 15;
	}
	wl_say("ready pid=%d child=%d grandchild=%d", (int)getpid(), (int)child, (int)grand);
	for (;;) {
		wl_wait_check();
		char bad[256] = "", want[64];
		snprintf(want, sizeof want, "\nPid:\t%d\n", (int)child);
		{
			char buf[4096];
			ssize_t n = pread(3, buf, sizeof buf - 1, 0);
			buf[n > 0 ? n : 0] = 0;
			if (!strstr(buf, want) || lseek(3, 0, SEEK_CUR) != 5) strcat(bad, "status,");
		}
		if (threads && !starts(4, 0, "procthr\n")) strcat(bad, "thread-comm,");
		if (threads && !starts(10, 0, "rootthr\n")) strcat(bad, "root-thread-comm,");
		if (ino_of(5) != ino_at("/proc/%d/ns/net", getpid()) || !ino_of(5)) strcat(bad, "netns,");
		if (ino_of(6) != ino_at("/proc/%d/ns/uts", child) || !ino_of(6)) strcat(bad, "utsns,");
		if (syscall(SYS_kcmp, child, grand, KCMP_FILE, 7, 7) != 0) strcat(bad, "shared,");
		if (!watches(child, 12, 11, EPOLLPRI, 0x77)) strcat(bad, "epoll,");
		if (fdinfo_field(child, 7, "pos:") != 7 || fdinfo_field(grand, 7, "pos:") != 7) strcat(bad, "pos,");
		if (!(fdinfo_field(child, 7, "flags:") & O_CLOEXEC) || (threads && (fdinfo_field(grand, 8, "flags:") & O_CLOEXEC))) strcat(bad, "cloexec,");
		{
			char p[64], l1[64] = "", l2[64] = "";
			snprintf(p, sizeof p, "/proc/%d/fd/7", (int)child);
			if (readlink(p, l1, sizeof l1 - 1) < 0) strcat(bad, "link7,");
			snprintf(want, sizeof want, "/proc/%d/stat", (int)child);
			if (strcmp(l1, want)) strcat(bad, "names-child,");
			snprintf(p, sizeof p, "/proc/%d/fd/8", (int)grand);
			if (threads && readlink(p, l2, sizeof l2 - 1) < 0) strcat(bad, "link8,");
			snprintf(want, sizeof want, "/proc/%d/task/%d/stat", (int)child, (int)tid);
			if (threads && strcmp(l2, want)) strcat(bad, "names-thread,");
			snprintf(p, sizeof p, "/proc/%d/fd/5", (int)grand);
			memset(l2, 0, sizeof l2);
			if (readlink(p, l2, sizeof l2 - 1) < 0 || strcmp(l2, p5(child))) strcat(bad, "grandchild-fd5,");
		}
		if (gone) {
			/* the files of the helper gone still name it, and read as a process gone's */
			char l9[64] = "", l13[64] = "", w9[64], w13[64], buf[64];
			snprintf(w9, sizeof w9, "/proc/%d/status", (int)gone);
			snprintf(w13, sizeof w13, "/proc/%d (deleted)", (int)gone);
			if (readlink("/proc/self/fd/9", l9, sizeof l9 - 1) < 0 || strcmp(l9, w9)) strcat(bad, "gone-status-link,");
			if (readlink("/proc/self/fd/13", l13, sizeof l13 - 1) < 0 || strcmp(l13, w13)) strcat(bad, "gone-dir-link,");
			errno = 0;
			if (pread(9, buf, sizeof buf, 0) != -1 || errno != ESRCH) strcat(bad, "gone-read,");
			if (fcntl(13, F_GETFD) != 0 || fcntl(9, F_GETFD) != 0) strcat(bad, "gone-fd,");
		}
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
