/* swarm THREADS PROCS STATEFILE: a process of THREADS threads (small stacks) and PROCS - 1
 * children, for checkpoints at scale. "ready pid=N"; on SIGUSR1 every thread is poked
 * (pthread_kill SIGUSR2: each one answers in its own handler), every child is checked alive
 * and not exited (waitpid WNOHANG) and pinged through its pipe: "check ok threads=T procs=P"
 * or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <pthread.h>
#include <errno.h>

static volatile int answered;
static __thread volatile int mine;

static void on_usr2(int sig) {
	(void)sig;
	mine++;
	__atomic_add_fetch(&answered, 1, __ATOMIC_SEQ_CST);
}

static void *idle(void *a) {
	(void)a;
	for (;;) pause();
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	int nthreads = atoi(argv[1]), nprocs = atoi(argv[2]);
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	signal(SIGUSR2, on_usr2);
	pid_t *kids = calloc(nprocs, sizeof *kids);
	int ping[2], pong[2];
	if (!kids || pipe(ping) || pipe(pong)) return 3;
	for (int i = 1; i < nprocs; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			/* a child answers each byte it takes from the shared pipe */
			char b;
			while (read(ping[0], &b, 1) == 1)
				if (write(pong[1], &b, 1) != 1) _exit(1);
			_exit(0);
		}
		if (kids[i] < 0) return 4;
	}
	pthread_t *t = calloc(nthreads, sizeof *t);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 * 1024);
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&t[i], &at, idle, 0)) return 5;

	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		char bad[128] = "";
		answered = 0;
		for (int i = 1; i < nthreads; i++) pthread_kill(t[i], SIGUSR2);
		for (int i = 0; i < 500 && answered < nthreads - 1; i++) usleep(10000);
		if (answered != nthreads - 1) strcat(bad, "threads,");
		int alive = 1;
		for (int i = 1; i < nprocs; i++)
			if (kill(kids[i], 0) || waitpid(kids[i], NULL, WNOHANG) != 0) alive = 0;
		for (int i = 1; i < nprocs && alive; i++) {
			char b = 'p';
			if (write(ping[1], &b, 1) != 1 || read(pong[0], &b, 1) != 1) alive = 0;
		}
		if (!alive) strcat(bad, "procs,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok threads=%d procs=%d", nthreads, nprocs);
		}
	}
}
