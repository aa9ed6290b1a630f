/* threads N STATEFILE: a main thread and N workers, each counting in its own slot;
 * on SIGUSR1: "check ok alive=N of N" when every worker's counter still advances. */
#include <pthread.h>
#include "workload.h"

static volatile unsigned long counters[64];

static void *worker(void *arg) {
	long i = (long)arg;
	for (;;) {
		counters[i]++;
		usleep(1000);
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int n = atoi(argv[1]);
	if (n < 1 || n > 64) return 2;
	wl_detach(argv[2]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, 0); /* workers inherit: only main takes SIGUSR1 */
	pthread_t t;
	for (long i = 0; i < n; i++) pthread_create(&t, 0, worker, (void *)i);
	wl_handle_usr1();
	pthread_sigmask(SIG_UNBLOCK, &set, 0);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		unsigned long before[64];
		for (int i = 0; i < n; i++) before[i] = counters[i];
		usleep(100000);
		int alive = 0;
		for (int i = 0; i < n; i++) alive += counters[i] != before[i];
		wl_say("check %s alive=%d of %d", alive == n ? "ok" : "bad", alive, n);
	}
}
