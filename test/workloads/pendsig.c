/* pendsig STATEFILE: SIGUSR2 and SIGRTMIN+2 blocked; SIGUSR2 queued to the process with
 * sigqueue (value 0x5eed) and SIGRTMIN+2 queued to the main thread only (pthread_sigqueue, value
 * 0x7a11), twice. They stay pending. On SIGUSR1: reports what sigpending shows, then takes them
 * with sigtimedwait and checks signal, si_code SI_QUEUE, sender pid and value:
 * "check ok shared=1 thread=2" when all are as queued. */
#include "workload.h"
#include <pthread.h>
#include <time.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	pid_t me = getpid();
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &set, 0);
	union sigval v = {.sival_int = 0x5eed};
	if (sigqueue(me, SIGUSR2, v)) return 3;
	v.sival_int = 0x7a11;
	if (pthread_sigqueue(pthread_self(), SIGRTMIN + 2, v)) return 3;
	v.sival_int = 0x7a12;
	if (pthread_sigqueue(pthread_self(), SIGRTMIN + 2, v)) return 3;
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)me);
	for (;;) {
		wl_wait_check();
		sigset_t pend;
		sigpending(&pend);
		int ok = sigismember(&pend, SIGUSR2) && sigismember(&pend, SIGRTMIN + 2);
		int shared = 0, thread = 0, want_rt = 0x7a11;
		struct timespec zero = {0, 0};
		siginfo_t si;
		int s;
		while ((s = sigtimedwait(&set, &si, &zero)) > 0) {
			if (si.si_code != SI_QUEUE || si.si_pid != me) ok = 0;
			if (s == SIGUSR2) {
				shared++;
				ok &= si.si_value.sival_int == 0x5eed;
			} else if (s == SIGRTMIN + 2) {
				thread++;
				ok &= si.si_value.sival_int == want_rt++; /* real-time signals keep their order */
			}
		}
		ok &= shared == 1 && thread == 2;
		wl_say("check %s shared=%d thread=%d", ok ? "ok" : "bad", shared, thread);
	}
}
