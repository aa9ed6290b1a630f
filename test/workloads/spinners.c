/* spinners N STATEFILE: N threads that never enter the kernel, each adding one to its own
 * counter as fast as it can. Any instant one of them runs moves its counter, so a test reading
 * the counters through /proc/PID/mem sees whether a thread ran at all (say, while it should
 * have been stopped). Says "ready pid=P addr=0xA n=N": the counters are N words at A, each on a
 * cache line of its own (8 words apart). */
#include <pthread.h>
#include "workload.h"

static volatile unsigned long counters[64 * 8] __attribute__((aligned(64)));

static void *spin(void *arg) {
	long i = (long)arg;
	for (;;) counters[i * 8]++;
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int n = atoi(argv[1]);
	if (n < 1 || n > 64) return 2;
	wl_detach(argv[2]);
	pthread_t t;
	for (long i = 0; i < n; i++) pthread_create(&t, 0, spin, (void *)i);
	signal(SIGUSR1, wl_on_usr1);
	wl_say("ready pid=%d addr=%#lx n=%d", (int)getpid(), (unsigned long)counters, n);
	for (;;) {
		wl_wait_check();
		wl_say("check ok");
	}
}
