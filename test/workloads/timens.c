/* A tree in a time namespace of its own: the root makes one (unshare CLONE_NEWTIME), moves its
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME 1000 days ahead (timens_offsets), enters it (setns on
 * time_for_children) and forks a child that lives in it too. Both read the two clocks every 20 ms
 * and note a jump: a clock going backwards, or forwards by more than 10 s between two readings
 * (a dump and a restore in between included). With "nested" the child then makes yet another
 * time namespace for its own children (time_for_children not its time namespace), which a dump
 * refuses by name.
 *
 *   timens [nested] STATEFILE
 *
 * SIGUSR1: "check ok child=1" when no clock jumped in either task, both still read more than
 * 1000 days of monotonic time, the offsets seen in /proc/self/timens_offsets are within 10
 * minutes of 1000 days (a restore on this machine moves them by the time the tree was away) and
 * the child is alive in the root's time namespace. */
#include "workload.h"
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define DAYS1000 86400000LL
#define NSEC 1000000000LL

static long long now_ns(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

/* what each task noted: 1 once a clock jumped (and by how much, in ms) */
struct note {
	volatile int jumped;
	volatile long long by_ms;
};

static void watch_step(struct note *n, long long *last_m, long long *last_b) {
	long long m = now_ns(CLOCK_MONOTONIC), b = now_ns(CLOCK_BOOTTIME);
	long long dm = m - *last_m, db = b - *last_b;
	if (!n->jumped && (dm < 0 || db < 0 || dm > 10 * NSEC || db > 10 * NSEC)) {
		n->jumped = 1;
		n->by_ms = (dm < 0 || dm > 10 * NSEC ? dm : db) / 1000000;
	}
	*last_m = m;
	*last_b = b;
}

/* the monotonic and boottime offsets of /proc/self/timens_offsets, in seconds */
static int offsets(long long *mono, long long *boot) {
	FILE *f = fopen("/proc/self/timens_offsets", "r");
	if (!f) return -1;
	char name[32];
	long long s, ns;
	int got = 0;
	while (fscanf(f, "%31s %lld %lld", name, &s, &ns) == 3) {
		if (!strcmp(name, "monotonic")) *mono = s, got |= 1;
		if (!strcmp(name, "boottime")) *boot = s, got |= 2;
	}
	fclose(f);
	return got == 3 ? 0 : -1;
}

static long long llabs_(long long v) { return v < 0 ? -v : v; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int nested = argc > 2 && strcmp(argv[1], "nested") == 0;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWTIME)) {
		wl_say("error unshare %d", errno);
		return 1;
	}
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	char off[64];
	int len = snprintf(off, sizeof off, "%d %lld 0\n%d %lld 0\n", CLOCK_MONOTONIC, DAYS1000, CLOCK_BOOTTIME, DAYS1000);
	if (fd < 0 || write(fd, off, len) != len) {
		wl_say("error timens_offsets %d", errno);
		return 1;
	}
	close(fd);
	fd = open("/proc/self/ns/time_for_children", O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWTIME)) {
		wl_say("error setns %d", errno);
		return 1;
	}
	close(fd);
	struct note *notes = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (notes == MAP_FAILED) return 1;
	wl_handle_usr1();
	pid_t child = fork();
	if (child == 0) {
		if (nested && unshare(CLONE_NEWTIME)) _exit(1);
		long long lm = now_ns(CLOCK_MONOTONIC), lb = now_ns(CLOCK_BOOTTIME);
		for (;;) {
			usleep(20000);
			watch_step(&notes[1], &lm, &lb);
		}
	}
	wl_say("ready pid=%d", (int)getpid());
	long long lm = now_ns(CLOCK_MONOTONIC), lb = now_ns(CLOCK_BOOTTIME);
	for (;;) {
		usleep(20000);
		watch_step(&notes[0], &lm, &lb);
		if (!wl_want_check) continue;
		wl_want_check = 0;
		long long mo = 0, bo = 0;
		int offs_ok = offsets(&mo, &bo) == 0 && llabs_(mo - DAYS1000) < 600 && llabs_(bo - DAYS1000) < 600;
		int ahead = lm / NSEC > DAYS1000 && lb / NSEC > DAYS1000;
		int kid = kill(child, 0) == 0 && wl_same_ns(getpid(), child, "time");
		if (!notes[0].jumped && !notes[1].jumped && offs_ok && ahead && kid)
			wl_say("check ok child=1");
		else
			wl_say("check bad jumped=%d/%d by_ms=%lld/%lld offsets=%lld/%lld monotonic=%lld child=%d", notes[0].jumped, notes[1].jumped,
			       notes[0].by_ms, notes[1].by_ms, mo, bo, lm / NSEC, kid);
	}
}
