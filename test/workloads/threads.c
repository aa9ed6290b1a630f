/* threads [spin] N STATEFILE: a main thread and N workers, each counting in its own slot (a
 * cache line each); on SIGUSR1: "check ok alive=N of N" when every worker's counter still advances.
 * spin: the workers never enter the kernel (no sleep between counts), so any instant one runs
 * moves its counter: a test reading the counters through /proc/PID/mem sees whether a worker ran
 * at all (say, while it should have been stopped). The ready line says where they are:
 * "ready pid=P addr=0xA", the counter of worker i at A + 64 * i. */
#include <pthread.h>
#include "workload.h"

#define SLOT 8 /* words: a counter per cache line */

static volatile unsigned long counters[64 * SLOT] __attribute__((aligned(64)));
static int spin;

static void *worker(void *arg) {
	long i = (long)arg;
	for (;;) {
		counters[i * SLOT]++;
		if (!spin) usleep(1000);
	}
	return 0;
}

int main(int argc, char **argv) {
	spin = argc > 1 && !strcmp(argv[1], "spin");
	if (argc < 3 + spin) return 2;
	int n = atoi(argv[1 + spin]);
	if (n < 1 || n > 64) return 2;
	wl_detach(argv[2 + spin]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, 0); /* workers inherit: only main takes SIGUSR1 */
	pthread_t t;
	for (long i = 0; i < n; i++) pthread_create(&t, 0, worker, (void *)i);
	wl_handle_usr1();
	pthread_sigmask(SIG_UNBLOCK, &set, 0);
	wl_say("ready pid=%d addr=%#lx", (int)getpid(), (unsigned long)counters);
	for (;;) {
		wl_wait_check();
		unsigned long before[64];
		for (int i = 0; i < n; i++) before[i] = counters[i * SLOT];
		usleep(100000);
		int alive = 0;
		for (int i = 0; i < n; i++) alive += counters[i * SLOT] != before[i];
		wl_say("check %s alive=%d of %d", alive == n ? "ok" : "bad", alive, n);
	}
}
