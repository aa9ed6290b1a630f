/* sigtrap MODE STATEFILE: a process whose SIGTRAP is blocked in both its threads and, by MODE,
 * ignored ("ign": SIG_IGN, SA_RESTART, mask SIGINT) or handled ("handler": SA_SIGINFO, mask
 * SIGINT). The dumper stops its tracees with int3 traps; the kernel, forcing the SIGTRAP of a
 * trap on a task that blocks or ignores it, unblocks it and resets its action to the default.
 * MODE "pending" (handled, and a SIGTRAP sent to the process) and "tpending" (handled, and one
 * sent to the second thread) leave a blocked SIGTRAP pending, which a dump must refuse and keep.
 * On SIGUSR1: "check ok" when the action and both threads' masks are as set (and, pending, the
 * SIGTRAP still pending where the second thread sees it). */
#include "workload.h"
#include <pthread.h>

static void on_trap(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static volatile int thread_ok = -1;
static volatile sig_atomic_t thread_want;
static volatile sig_atomic_t thread_set; /* the worker's mask is set: until then it is glibc's (all blocked while a thread starts) */
static int want_pending;

static void *worker(void *arg) {
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	sigaddset(&set, SIGUSR1); /* the main thread answers SIGUSR1 */
	pthread_sigmask(SIG_BLOCK, &set, 0);
	thread_set = 1;
	for (;;) {
		if (thread_want) {
			sigset_t cur;
			pthread_sigmask(SIG_BLOCK, 0, &cur);
			sigset_t pend;
			sigpending(&pend);
			thread_ok = sigismember(&cur, SIGTRAP) && sigismember(&cur, SIGUSR1) && (!want_pending || sigismember(&pend, SIGTRAP));
			thread_want = 0;
		}
		usleep(10000);
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int ign = strcmp(argv[1], "ign") == 0;
	want_pending = strcmp(argv[1], "pending") == 0 ? 1 : strcmp(argv[1], "tpending") == 0 ? 2 : 0;
	wl_detach(argv[2]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (ign) {
		sa.sa_handler = SIG_IGN;
		sa.sa_flags = SA_RESTART;
	} else {
		sa.sa_sigaction = on_trap;
		sa.sa_flags = SA_SIGINFO;
	}
	sigaddset(&sa.sa_mask, SIGINT);
	sigaction(SIGTRAP, &sa, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, 0);
	pthread_t t;
	pthread_create(&t, 0, worker, 0);
	while (!thread_set) usleep(1000);
	if (want_pending == 1) kill(getpid(), SIGTRAP);
	if (want_pending == 2) pthread_kill(t, SIGTRAP);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		thread_ok = -1;
		thread_want = 1;
		while (thread_ok < 0) usleep(1000);
		struct sigaction o;
		sigaction(SIGTRAP, 0, &o);
		int ok = ign ? o.sa_handler == SIG_IGN && (o.sa_flags & SA_RESTART) : o.sa_sigaction == on_trap && (o.sa_flags & SA_SIGINFO);
		ok &= sigismember(&o.sa_mask, SIGINT);
		sigset_t cur;
		pthread_sigmask(SIG_BLOCK, 0, &cur);
		int main_ok = sigismember(&cur, SIGTRAP) && sigismember(&cur, SIGTERM) && !sigismember(&cur, SIGUSR1);
		wl_say("check %s action=%d main=%d thread=%d", ok && main_ok && thread_ok ? "ok" : "bad", ok, main_ok, (int)thread_ok);
	}
}
