/* scale KIND N STATEFILE: workloads of bench/scale.mjs (issue 18), one shape grown to N (the
 * maps curve's is test/workloads/manymaps.c).
 *   tree N     N processes: a tree of fan-out 10 under the workload (each waits in pause).
 *   threads N  one process of N threads (the main one and N-1 others with 64 KiB stacks).
 * It detaches (test/workloads/workload.h), says "ready pid=N", and on SIGUSR1 counts its own
 * shape again: "check ok n=N" (processes under it, or threads) or "check bad n=M". */
#include <dirent.h>
#include <pthread.h>
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
	} else {
		return 2;
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int got = 0;
		if (!strcmp(kind, "tree")) got = count_tree(getpid());
		else got = count_threads();
		wl_say("check %s n=%d", got == n ? "ok" : "bad", got);
	}
}
