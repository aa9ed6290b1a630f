/* A tree in a pid namespace of its own: the workload unshares its pid namespace and forks the
 * namespace's init, which leads a session of its own, forks two children and starts a thread,
 * then its outside parent says "ready pid=<init as crtools sees it>" and exits.
 *
 *   pidns [hostproc|protnone] STATEFILE
 *
 * hostproc: the init holds /proc/1/status open at fd 20 through criu's /proc (the tree has no
 * mount namespace of its own): the host's init, which its own pid 1 is not (the dump refuses it).
 * protnone: the init holds 64 pages of a pattern, every other one made PROT_NONE (pages a
 * dumper's vmsplice cannot take, read through /proc/PID/mem of the task's real pid: zdtm's
 * maps04 in its namespace flavour); the check reads them back through /proc/self/mem.
 *
 * SIGUSR1 (to the init): "check ok pid=1 children=2 thread=1" when the init is still pid 1 of
 * its namespace, each child still has the pid it was born with there (a child whose getpid()
 * changes exits, and the init sees it gone), the thread's tid is the one it started with, the
 * init's pidfd still names its first child (the last of its fdinfo NSpid) and the owner of its
 * pipe's I/O signals (F_SETOWN) is still its second child, its POSIX timer aimed at the thread
 * (SIGEV_THREAD_ID: /proc/PID/timers names the thread as crtools sees it, the image as the tree
 * does) still runs, and its flock on STATEFILE.lock is still held (dumped with --file-locks: the
 * lock's task named inside the namespace). */
#include "workload.h"
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

static volatile pid_t thread_tid0, thread_tid;

static void *spin(void *arg) {
	(void)arg;
	thread_tid0 = (pid_t)syscall(SYS_gettid);
	for (;;) {
		thread_tid = (pid_t)syscall(SYS_gettid);
		usleep(20000);
	}
	return 0;
}

/* the last pid of "NSpid:" in /proc/self/fdinfo/FD, -1 if none */
static int pidfd_nspid(int fd) {
	char p[64], buf[1024];
	snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
	int f = open(p, O_RDONLY);
	if (f < 0) return -1;
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0) return -1;
	buf[n] = 0;
	char *l = strstr(buf, "NSpid:");
	if (!l) return -1;
	char *end = strchr(l, '\n');
	if (end) *end = 0;
	char *last = strrchr(l, '\t');
	if (!last) last = strrchr(l, ' ');
	return last ? atoi(last + 1) : -1;
}

#define NONE_PAGES 64
static unsigned char *none_area;

static unsigned char none_byte(size_t i) { return (unsigned char)((i * 2654435761u) >> 11); }

/* 1 when the PROT_NONE area still holds its pattern (read through /proc/self/mem) */
static int none_ok(void) {
	if (!none_area) return 1;
	static unsigned char buf[NONE_PAGES * 4096];
	int f = open("/proc/self/mem", O_RDONLY);
	if (f < 0) return 0;
	ssize_t n = pread(f, buf, sizeof buf, (off_t)(uintptr_t)none_area);
	close(f);
	if (n != (ssize_t)sizeof buf) return 0;
	for (size_t i = 0; i < sizeof buf; i++)
		if (buf[i] != none_byte(i)) return 0;
	return 1;
}

static void child_loop(void) {
	pid_t me = getpid();
	for (;;) {
		if (getpid() != me) _exit(3);
		usleep(20000);
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWPID)) {
		wl_say("error unshare");
		return 1;
	}
	int p[2];
	if (pipe(p)) return 1;
	pid_t init = fork();
	if (init < 0) return 1;
	if (init > 0) {
		/* outside: wait for the init to be set up, say its pid, and leave it to the reaper */
		return wl_init_ready(p, init);
	}
	close(p[0]);
	setsid();
	wl_handle_usr1();
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			close(p[1]);
			child_loop();
		}
	}
	int pfd = (int)syscall(SYS_pidfd_open, kids[0], 0);
	int q[2];
	if (pfd < 0 || pipe(q) || fcntl(q[0], F_SETOWN, kids[1])) {
		wl_say("error pidfd/fown");
		return 1;
	}
	pthread_t th;
	if (pthread_create(&th, 0, spin, 0)) return 1;
	while (!thread_tid0) usleep(1000);
	timer_t timer;
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR2;
	sev._sigev_un._tid = thread_tid0;
	struct itimerspec its = { .it_value = { .tv_sec = 86400 } };
	char lockpath[4200];
	snprintf(lockpath, sizeof lockpath, "%s.lock", argv[argc - 1]);
	int lk = open(lockpath, O_RDWR | O_CREAT, 0600);
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &its, 0) || lk < 0 || flock(lk, LOCK_EX)) {
		wl_say("error timer/flock");
		return 1;
	}
	if (argc > 2 && !strcmp(argv[1], "hostproc")) {
		int h = open("/proc/1/status", O_RDONLY);
		if (h < 0 || dup2(h, 20) != 20) return 1;
		close(h);
	}
	if (argc > 2 && !strcmp(argv[1], "protnone")) {
		none_area = mmap(0, NONE_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (none_area == MAP_FAILED) return 1;
		for (size_t i = 0; i < NONE_PAGES * 4096; i++) none_area[i] = none_byte(i);
		for (int i = 0; i < NONE_PAGES; i += 2)
			if (mprotect(none_area + i * 4096, 4096, PROT_NONE)) return 1;
	}
	if (write(p[1], "k", 1) != 1) return 1;
	close(p[1]);
	for (;;) {
		wl_wait_check();
		int alive = 0;
		for (int i = 0; i < 2; i++)
			if (waitpid(kids[i], 0, WNOHANG) == 0 && kill(kids[i], 0) == 0) alive++;
		pid_t t = thread_tid;
		usleep(50000);
		int thread_ok = t == thread_tid0 && thread_tid == thread_tid0;
		int pidfd_of = pidfd_nspid(pfd), owner = fcntl(q[0], F_GETOWN);
		struct itimerspec left;
		int timer_ok = timer_gettime(timer, &left) == 0 && left.it_value.tv_sec > 80000;
		int other = open(lockpath, O_RDWR);
		int locked = other >= 0 && flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		if (other >= 0) close(other);
		int mem_ok = none_ok();
		if (getpid() == 1 && alive == 2 && thread_ok && pidfd_of == kids[0] && owner == kids[1] && timer_ok && locked && mem_ok)
			wl_say("check ok pid=1 children=2 thread=1");
		else
			wl_say("check bad pid=%d children=%d thread=%d/%d pidfd=%d/%d owner=%d/%d timer=%d locked=%d protnone=%d", (int)getpid(), alive, (int)thread_tid, (int)thread_tid0,
			       pidfd_of, (int)kids[0], owner, (int)kids[1], timer_ok, locked, mem_ok);
	}
}
