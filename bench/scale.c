/* scale KIND N STATEFILE: the workloads of bench/scale.mjs (issue 18), one shape grown to N.
 *   tree N     N processes: a tree of fan-out 10 under the workload (each waits in pause).
 *   threads N  one process of N threads (the main one and N-1 others with 64 KiB stacks).
 *   maps N     one process with N more private anonymous mappings of one page each, written
 *              (every other one read-only so that neighbours never merge into one area).
 * It detaches (test/workloads/workload.h), says "ready pid=N", and on SIGUSR1 counts its own
 * shape again: "check ok n=N" (processes under it, threads, or intact written pages) or
 * "check bad n=M". */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include "../test/workloads/workload.h"

static int n;

/* the processes of the tree rooted at pid (itself included), through /proc/PID/task/TID/children */
static int count_tree(pid_t pid) {
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)pid, (int)pid);
	FILE *f = fopen(p, "r");
	if (!f) return 0;
	int total = 1, c;
	while (fscanf(f, "%d", &c) == 1) total += count_tree(c);
	fclose(f);
	return total;
}

static void grow_tree(int idx) {
	for (int k = 1; k <= 10; k++) {
		int child = idx * 10 + k;
		if (child >= n) return;
		pid_t c = fork();
		if (c < 0) { wl_say("error fork"); exit(1); }
		if (c == 0) {
			signal(SIGUSR1, SIG_IGN);
			grow_tree(child);
			for (;;) pause();
		}
	}
}

static void *idle(void *arg) {
	(void)arg;
	for (;;) pause();
	return 0;
}

static int count_threads(void) {
	DIR *d = opendir("/proc/self/task");
	int total = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) total += e->d_name[0] != '.';
	if (d) closedir(d);
	return total;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *kind = argv[1];
	n = atoi(argv[2]);
	if (n < 1) return 2;
	wl_detach(argv[3]);
	wl_handle_usr1();
	uint64_t **pages = 0;
	long psz = sysconf(_SC_PAGESIZE);
	if (!strcmp(kind, "tree")) {
		grow_tree(0);
	} else if (!strcmp(kind, "threads")) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 64 * 1024);
		for (int i = 1; i < n; i++) {
			pthread_t t;
			if (pthread_create(&t, &a, idle, 0)) { wl_say("error thread %d", i); return 1; }
		}
	} else if (!strcmp(kind, "maps")) {
		/* one reservation carved into n single-page areas, alternately writable and read-only */
		char *base = mmap(0, (size_t)n * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) { wl_say("error mmap"); return 1; }
		pages = malloc(sizeof *pages * n);
		for (int i = 0; i < n; i++) {
			pages[i] = (uint64_t *)(base + (size_t)i * psz);
			pages[i][0] = 0x9E3779B97F4A7C15ull * (i + 1);
			if (i % 2 && mprotect(pages[i], psz, PROT_READ)) { wl_say("error mprotect %d", i); return 1; }
		}
	} else {
		return 2;
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int got = 0;
		if (!strcmp(kind, "tree")) got = count_tree(getpid());
		else if (!strcmp(kind, "threads")) got = count_threads();
		else for (int i = 0; i < n; i++) got += pages[i][0] == 0x9E3779B97F4A7C15ull * (i + 1);
		wl_say("check %s n=%d", got == n ? "ok" : "bad", got);
	}
}
