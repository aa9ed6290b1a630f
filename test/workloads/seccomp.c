/* seccomp [strict] STATEFILE: seccomp filters that differ between threads and processes.
 *   main thread: filter A (getsid -> EPERM), then, after the worker thread and the child
 *     exist, filter B (sysinfo -> ENOTTY; munmap, setresuid and rseq kill the process: a
 *     restore that ran any of those under the filters would kill it);
 *   worker thread: A inherited, then C of its own (getpgid -> EACCES), without TSYNC: the two
 *     threads' chains differ (A+B and A+C);
 *   forked child: A+B inherited, then D (getpriority -> ERANGE); it answers each byte on its
 *     command pipe with a byte saying how its own probes went;
 *   with "strict": a second child in SECCOMP_MODE_STRICT (forked before any filter), blocked in
 *     read() on a pipe, writes "s" back for each byte it reads.
 * "ready pid=N child=C [strict=S]". On SIGUSR1 every thread and process checks its
 * /proc status (Seccomp, Seccomp_filters) and that each filtered call fails with its errno and
 * the others work: "check ok" or "check bad what=NAME,NAME...". */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ON(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define CHECK_ARCH                                                                   \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),       \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0), ALLOW

static struct sock_filter filter_a[] = {CHECK_ARCH, LOAD_NR, ON(SYS_getsid, SECCOMP_RET_ERRNO | EPERM), ALLOW};
static struct sock_filter filter_b[] = {
	CHECK_ARCH, LOAD_NR,
	ON(SYS_sysinfo, SECCOMP_RET_ERRNO | ENOTTY),
	ON(SYS_munmap, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_setresuid, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_rseq, SECCOMP_RET_KILL_PROCESS),
	ALLOW,
};
static struct sock_filter filter_c[] = {CHECK_ARCH, LOAD_NR, ON(SYS_getpgid, SECCOMP_RET_ERRNO | EACCES), ALLOW};
static struct sock_filter filter_d[] = {CHECK_ARCH, LOAD_NR, ON(SYS_getpriority, SECCOMP_RET_ERRNO | ERANGE), ALLOW};

static int install(struct sock_filter *f, size_t n) {
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}
#define INSTALL(f) install(f, sizeof(f) / sizeof(f[0]))

/* a raw call's errno (0: it worked) */
static int err_of(long r) { return r < 0 ? errno : 0; }
static int p_getsid(void) { return err_of(syscall(SYS_getsid, 0)); }
static int p_getpgid(void) { return err_of(syscall(SYS_getpgid, 0)); }
static int p_sysinfo(void) { struct sysinfo si; return err_of(syscall(SYS_sysinfo, &si)); }
static int p_getpriority(void) { return err_of(syscall(SYS_getpriority, PRIO_PROCESS, 0)); }

/* "Seccomp:" and "Seccomp_filters:" of /proc/PID/task/TID/status (raw reads only) */
static void seccomp_status(int pid, int tid, int *mode, int *nfilters) {
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
	*mode = *nfilters = -1;
	int fd = open(path, O_RDONLY);
	if (fd < 0) return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return;
	buf[n] = 0;
	char *p = strstr(buf, "\nSeccomp:");
	if (p) *mode = atoi(p + 9);
	p = strstr(buf, "\nSeccomp_filters:");
	if (p) *nfilters = atoi(p + 17);
}

static char bad[512];
static void flag(const char *what) {
	if (strlen(bad) + strlen(what) + 2 >= sizeof bad) return;
	if (*bad) strcat(bad, ",");
	strcat(bad, what);
}

static volatile pid_t worker_tid;
static volatile int worker_probe, worker_result;

/* the worker's own probes: bit 0 getsid, 1 getpgid, 2 sysinfo (set = as expected) */
static int worker_probes(void) {
	return (p_getsid() == EPERM) | (p_getpgid() == EACCES) << 1 | (p_sysinfo() == 0) << 2;
}

static void *worker(void *arg) {
	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	if (INSTALL(filter_c)) worker_result = -1;
	for (;;) {
		while (!__atomic_load_n(&worker_probe, __ATOMIC_SEQ_CST)) usleep(5000);
		worker_result = worker_probes();
		__atomic_store_n(&worker_probe, 0, __ATOMIC_SEQ_CST);
	}
	return 0;
}

/* the filtered child: bit 0 getsid, 1 sysinfo, 2 getpriority, 3 getpgid (set = as expected) */
static void child_loop(int cmd, int reply) {
	for (;;) {
		char b;
		if (syscall(SYS_read, cmd, &b, 1) != 1) syscall(SYS_exit, 1);
		char r = (char)('0' + ((p_getsid() == EPERM) | (p_sysinfo() == ENOTTY) << 1 | (p_getpriority() == ERANGE) << 2 | (p_getpgid() == 0) << 3));
		syscall(SYS_write, reply, &r, 1);
	}
}

/* the strict child: only read, write and exit from here on */
static void strict_loop(int cmd, int reply) {
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 1);
	for (;;) {
		char b;
		if (syscall(SYS_read, cmd, &b, 1) != 1) syscall(SYS_exit, 1);
		syscall(SYS_write, reply, "s", 1);
	}
}

/* one byte to a child, one back within 2 s ('\0': none) */
static char ask(int cmd, int reply) {
	char b = 'q';
	if (write(cmd, &b, 1) != 1) return 0;
	struct pollfd p = {.fd = reply, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1 || read(reply, &b, 1) != 1) return 0;
	return b;
}

static void expect_status(int pid, int tid, int mode, int nfilters, const char *what) {
	int m, n;
	seccomp_status(pid, tid, &m, &n);
	if (m != mode || n != nfilters) {
		char w[64];
		snprintf(w, sizeof w, "%s-status:%d/%d", what, m, n);
		flag(w);
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int strict = argc > 2 && !strcmp(argv[1], "strict");
	wl_detach(argv[argc - 1]);
	int scmd[2] = {-1, -1}, sreply[2] = {-1, -1}, ccmd[2], creply[2];
	pid_t strict_pid = 0;
	if (strict) {
		if (pipe(scmd) || pipe(sreply)) { wl_say("error pipe"); return 1; }
		strict_pid = fork();
		if (strict_pid < 0) { wl_say("error fork"); return 1; }
		if (strict_pid == 0) {
			close(scmd[1]);
			close(sreply[0]);
			strict_loop(scmd[0], sreply[1]);
		}
		close(scmd[0]);
		close(sreply[1]);
	}
	if (INSTALL(filter_a)) { wl_say("error seccomp a %d", errno); return 1; }
	pthread_t th;
	if (pthread_create(&th, 0, worker, 0)) { wl_say("error thread"); return 1; }
	while (!worker_tid) usleep(1000);
	if (INSTALL(filter_b)) { wl_say("error seccomp b %d", errno); return 1; }
	if (pipe(ccmd) || pipe(creply)) { wl_say("error pipe"); return 1; }
	pid_t child = fork();
	if (child < 0) { wl_say("error fork"); return 1; }
	if (child == 0) {
		if (INSTALL(filter_d)) syscall(SYS_exit, 1);
		close(ccmd[1]);
		close(creply[0]);
		child_loop(ccmd[0], creply[1]);
	}
	close(ccmd[0]);
	close(creply[1]);
	wl_handle_usr1();
	if (strict) wl_say("ready pid=%d child=%d strict=%d", (int)getpid(), (int)child, (int)strict_pid);
	else wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		*bad = 0;
		int pid = (int)getpid();
		expect_status(pid, pid, 2, 2, "main");
		expect_status(pid, worker_tid, 2, 2, "worker");
		expect_status(child, child, 2, 3, "child");
		if (strict) expect_status(strict_pid, strict_pid, 1, 0, "strict");
		if (p_getsid() != EPERM) flag("main-getsid");
		if (p_sysinfo() != ENOTTY) flag("main-sysinfo");
		if (p_getpgid() != 0) flag("main-getpgid");
		if (p_getpriority() != 0) flag("main-getpriority");
		__atomic_store_n(&worker_probe, 1, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 400 && __atomic_load_n(&worker_probe, __ATOMIC_SEQ_CST); i++) usleep(5000);
		if (__atomic_load_n(&worker_probe, __ATOMIC_SEQ_CST)) flag("worker-silent");
		else if (worker_result != 7) {
			char w[32];
			snprintf(w, sizeof w, "worker-probes:%d", worker_result);
			flag(w);
		}
		char r = ask(ccmd[1], creply[0]);
		if (r != '0' + 15) {
			char w[32];
			snprintf(w, sizeof w, "child-probes:%c", r ? r : '-');
			flag(w);
		}
		if (strict && ask(scmd[1], sreply[0]) != 's') flag("strict-silent");
		if (*bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
