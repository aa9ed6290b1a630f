/* schedstate STATEFILE: nice 7 on the main thread, a second thread under SCHED_IDLE, a third
 * under SCHED_FIFO priority 3 with SCHED_RESET_ON_FORK and nice -4, oom_score_adj 345. Threads
 * sleep; state is checked from outside through /proc. "ready pid=N idle=TID fifo=TID". On
 * SIGUSR1, what /proc cannot show: "check ok" when sched_getscheduler() still gives the third
 * thread SCHED_FIFO with the reset-on-fork flag, else "check bad policy=N". */
#include "workload.h"
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static volatile pid_t tids[2];

static void *worker(void *arg) {
	long i = (long)arg;
	tids[i] = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	pthread_t t;
	for (long i = 0; i < 2; i++) pthread_create(&t, 0, worker, (void *)i);
	while (!tids[0] || !tids[1]) usleep(1000);
	struct sched_param p = {.sched_priority = 0};
	if (sched_setscheduler(tids[0], SCHED_IDLE, &p)) return 3;
	p.sched_priority = 3;
	if (sched_setscheduler(tids[1], SCHED_FIFO | SCHED_RESET_ON_FORK, &p)) return 3;
	if (setpriority(PRIO_PROCESS, tids[1], -4)) return 3;
	if (setpriority(PRIO_PROCESS, getpid(), 7)) return 3;
	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	if (!f) return 3;
	fprintf(f, "345\n");
	fclose(f);
	wl_handle_usr1();
	wl_say("ready pid=%d idle=%d fifo=%d", (int)getpid(), (int)tids[0], (int)tids[1]);
	for (;;) {
		wl_wait_check();
		int policy = sched_getscheduler(tids[1]);
		if (policy == (SCHED_FIFO | SCHED_RESET_ON_FORK)) wl_say("check ok");
		else wl_say("check bad policy=%d", policy);
	}
}
