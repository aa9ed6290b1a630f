/* sighandlers STATEFILE: handlers for SIGUSR2 (SA_SIGINFO|SA_RESTART, mask SIGINT) and SIGHUP
 * (SA_ONSTACK on an alternate stack), SIGPIPE ignored, SIGTERM and SIGQUIT blocked.
 * On SIGUSR1: "check ok" when all dispositions, the mask and the alt stack are as set. */
#include "workload.h"

static char altstack[65536];
static void on_usr2(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static void on_hup(int sig) { (void)sig; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaddset(&sa.sa_mask, SIGINT);
	sigaction(SIGUSR2, &sa, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGHUP, &sa, 0);
	signal(SIGPIPE, SIG_IGN);
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
	sigaltstack(&ss, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, 0);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		struct sigaction o;
		int ok = 1;
		sigaction(SIGUSR2, 0, &o);
		ok &= o.sa_sigaction == on_usr2 && (o.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART) && sigismember(&o.sa_mask, SIGINT);
		sigaction(SIGHUP, 0, &o);
		ok &= o.sa_handler == on_hup && (o.sa_flags & SA_ONSTACK);
		sigaction(SIGPIPE, 0, &o);
		ok &= o.sa_handler == SIG_IGN;
		sigset_t cur;
		sigprocmask(SIG_BLOCK, 0, &cur);
		ok &= sigismember(&cur, SIGTERM) && sigismember(&cur, SIGQUIT) && !sigismember(&cur, SIGUSR1);
		stack_t cs;
		sigaltstack(0, &cs);
		ok &= cs.ss_sp == altstack && cs.ss_size == sizeof altstack;
		wl_say("check %s", ok ? "ok" : "bad");
	}
}
