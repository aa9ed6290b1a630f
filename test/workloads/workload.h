/* Shared helpers of the test workloads (header only; each workload is one .c file).
 *
 * Every workload is started by a test as `NAME ... STATEFILE`. It detaches from
 * its starter (fork, fork, setsid) so it is never a child of the test runner,
 * writes "ready pid=N" to STATEFILE once set up, and on SIGUSR1 writes a verdict
 * line ("check ok ..." or "check bad ...") to STATEFILE. Tests kill it by pid. */
#ifndef CRTOOLS_WORKLOAD_H
#define CRTOOLS_WORKLOAD_H
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *wl_state;
static volatile sig_atomic_t wl_want_check;
static inline void wl_on_usr1(int sig) { (void)sig; wl_want_check = 1; }

/* Write one line (printf format) to the state file, replacing its content atomically. */
static inline void wl_say(const char *fmt, ...) {
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp%d", wl_state, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f) return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
	rename(tmp, wl_state);
}

/* Leave the starter's process tree (fork, fork, setsid): the caller returns in the grandchild only. */
static inline void wl_detach(const char *state) {
	wl_state = state;
	pid_t c = fork();
	if (c < 0) exit(1);
	if (c > 0) {
		int st;
		waitpid(c, &st, 0);
		exit(0);
	}
	if (fork() != 0) _exit(0);
	setsid(); /* the workload leads its own session and group, as the fixtures' do */
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2) close(nul);
	}
	/* drop whatever the starter leaked (test runners keep IPC pipes open) */
	for (int fd = 3; fd < 1024; fd++) close(fd);
}

/* Outside a pid namespace's init, which writes 'k' on pipe p once it is set up: wait for that,
 * say "ready pid=<init as crtools sees it>"; 0, or 1 when the init never got set up. */
static inline int wl_init_ready(int p[2], pid_t init) {
	char c = 0;
	close(p[1]);
	if (read(p[0], &c, 1) != 1 || c != 'k') {
		wl_say("error init setup");
		return 1;
	}
	wl_say("ready pid=%d", (int)init);
	return 0;
}

/* Wait until SIGUSR1 asks for a verdict (checked every 20 ms). */
static inline void wl_wait_check(void) {
	while (!wl_want_check) usleep(20000);
	wl_want_check = 0;
}

/* Answers each SIGUSR1 with check()'s verdict, for good: "check ok", or "check bad: " and what it found. */
static inline void wl_answer(const char *(*check)(void)) {
	for (;;) {
		wl_wait_check();
		const char *bad = check();
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

/* Says "ready" on READY (a pipe), then answers each SIGUSR1 as wl_answer does (1 when READY cannot be written). */
static inline int wl_serve(int ready, const char *(*check)(void)) {
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	wl_answer(check);
	return 0;
}

/* A mount as mountinfo shows it: device, root, propagation (peer group, master), file system. */
struct wl_mount {
	int found, shared, master;
	unsigned maj, min;
	char fs[32], root[4096];
};

/* Mount point PATH in mountinfo file MI (the last line: the top of a stack); found 0 when none. */
static inline struct wl_mount wl_mount_in(const char *mi, const char *path) {
	static struct wl_mount r;
	memset(&r, 0, sizeof r);
	FILE *f = fopen(mi, "r");
	if (!f) return r;
	static char line[8192], root[4096], mp[4096];
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &maj, &min, root, mp) != 4 || strcmp(mp, path)) continue;
		memset(&r, 0, sizeof r);
		r.found = 1;
		r.maj = maj, r.min = min;
		snprintf(r.root, sizeof r.root, "%s", root);
		char *o = strstr(line, " shared:");
		if (o) r.shared = atoi(o + 8);
		o = strstr(line, " master:");
		if (o) r.master = atoi(o + 8);
		o = strstr(line, " - ");
		if (o) sscanf(o + 3, "%31s", r.fs);
	}
	fclose(f);
	return r;
}

/* 1 when tasks a and b are in the same namespace of this kind (/proc/PID/ns/KIND links equal). */
static inline int wl_same_ns(pid_t a, pid_t b, const char *kind) {
	char pa[64], pb[64], la[64] = "", lb[64] = "";
	snprintf(pa, sizeof pa, "/proc/%d/ns/%s", a, kind);
	snprintf(pb, sizeof pb, "/proc/%d/ns/%s", b, kind);
	if (readlink(pa, la, sizeof la - 1) < 0 || readlink(pb, lb, sizeof lb - 1) < 0) return 0;
	return strcmp(la, lb) == 0;
}

/* A small file's text into buf (n bytes at most, NUL-terminated, one trailing newline dropped): 0, or -1. */
static inline int wl_read_file(const char *p, char *buf, size_t n) {
	int fd = open(p, O_RDONLY);
	if (fd < 0) return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0) return -1;
	buf[r] = 0;
	if (r && buf[r - 1] == '\n') buf[r - 1] = 0;
	return 0;
}

/* v written whole to the file p (a /proc or /sys setting): 0, or -1. */
static inline int wl_write_file(const char *p, const char *v) {
	int fd = open(p, O_WRONLY);
	if (fd < 0) return -1;
	int ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
	close(fd);
	return ok ? 0 : -1;
}

static inline void wl_handle_usr1(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = wl_on_usr1;
	sigaction(SIGUSR1, &sa, 0);
}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* host:port (AF_INET or AF_INET6, numeric host) into ss; its length. */
static inline socklen_t wl_inet_addr(int family, const char *host, int port, struct sockaddr_storage *ss) {
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, host, &a->sin_addr);
		return sizeof *a;
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	inet_pton(AF_INET6, host, &a->sin6_addr);
	return sizeof *a;
}

#endif
