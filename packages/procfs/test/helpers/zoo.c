/*
 * A process that holds one of every kind of mapping and descriptor procfs
 * parses, then prints "ready <pid>" and waits to be killed.
 * Usage: zoo DIR [NMAPS [BIG_MIB]]
 *   DIR: a scratch directory it may create files in; NMAPS: extra one-page
 *   areas; BIG_MIB: one more private anonymous area of that size with every
 *   16th page touched (for pagemap benchmarks).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static void *map_file(const char *path, int flags) {
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) { perror(path); exit(1); }
	if (ftruncate(fd, 8192)) { perror("ftruncate"); exit(1); }
	void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	close(fd);
	return p;
}

static void *sleeper(void *arg) {
	(void)arg;
	for (;;) pause();
	return NULL;
}

int main(int argc, char **argv) {
	char path[4096];
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	long nmaps = argc > 2 ? atol(argv[2]) : 0;
	long big_mib = argc > 3 ? atol(argv[3]) : 0;

	/* file names with a space, a newline, and one deleted afterwards */
	snprintf(path, sizeof(path), "%s/with space", dir);
	((char *)map_file(path, MAP_SHARED))[0] = 1;
	snprintf(path, sizeof(path), "%s/new\nline", dir);
	((char *)map_file(path, MAP_PRIVATE))[0] = 1;
	snprintf(path, sizeof(path), "%s/gone", dir);
	map_file(path, MAP_SHARED);
	unlink(path);

	/* anonymous shared, named anonymous, memfd, SysV shm */
	char *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sh[0] = 1;
	char *named = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 4096, "zoo name");
	int mfd = memfd_create("zoo-memfd", 0);
	ftruncate(mfd, 4096);
	mmap(NULL, 4096, PROT_READ, MAP_SHARED, mfd, 0);
	int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (shmid >= 0) { shmat(shmid, NULL, 0); shmctl(shmid, IPC_RMID, NULL); }

	/* an AIO ring */
	aio_context_t ctx = 0;
	syscall(SYS_io_setup, 8, &ctx);

	/* a grows-down area; its real start, to compare with what maps shows */
	void *gd = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	printf("growsdown %lx\n", (unsigned long)gd);

	/* many small areas with alternating protections so they never merge */
	if (nmaps > 0) {
		char *big = mmap(NULL, nmaps * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (big == MAP_FAILED) { perror("mmap big"); return 1; }
		for (long i = 0; i < nmaps; i += 2)
			mprotect(big + i * 4096, 4096, PROT_READ | PROT_WRITE);
	}

	if (big_mib > 0) {
		size_t len = (size_t)big_mib << 20;
		char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (b == MAP_FAILED) { perror("mmap big_mib"); return 1; }
		for (size_t off = 0; off < len; off += 16 * 4096)
			b[off] = 1;
		printf("big %lx %lx\n", (unsigned long)b, (unsigned long)(b + len));
	}

	/* descriptors of every kind fdinfo describes */
	int efd = eventfd(5, EFD_NONBLOCK);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = 0x1122334455667788ull };
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	sigset_t ss; sigemptyset(&ss); sigaddset(&ss, SIGUSR2); sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signalfd(-1, &ss, SFD_CLOEXEC);
	int in = inotify_init1(0);
	inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
	int fan = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
	if (fan >= 0) fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir);
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec its = { .it_interval = { 1000, 0 }, .it_value = { 2000, 0 } };
	timerfd_settime(tfd, 0, &its, NULL);
	snprintf(path, sizeof(path), "%s/locked", dir);
	int lfd = open(path, O_RDWR | O_CREAT | O_APPEND, 0600);
	flock(lfd, LOCK_EX);
	lseek(lfd, 0, SEEK_SET);
	write(lfd, "abc", 3);

	/* a POSIX timer, so /proc/PID/timers has an entry */
	timer_t tid;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	sev.sigev_value.sival_ptr = (void *)0x1234;
	timer_create(CLOCK_MONOTONIC, &sev, &tid);

	/* a second thread and a child process (which dies with us) */
	pthread_t th;
	pthread_create(&th, NULL, sleeper, NULL);
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) _exit(0);
		for (;;) pause();
	}
	printf("child %d\n", child);
	printf("ready %d\n", getpid());
	fflush(stdout);
	for (;;) pause();
}
