/* ptimer STATEFILE: POSIX timers. Three CLOCK_MONOTONIC timers are created and the first two
 * deleted, so the one kept has a non-first id; it is periodic (10 ms, SIGRTMIN+3, sival 0x71) and
 * a handler counts its ticks. A second timer is a one-shot 1000 s CLOCK_REALTIME timer (SIGEV_NONE).
 * "ready pid=N id=ID oneshot=ID2". On SIGUSR1: ticks must go on for 300 ms with si_timerid = ID
 * and the value as set; the periodic one keeps its interval, the one-shot has 900..1000 s left:
 * "check ok id=ID ticks=+K". */
#include "workload.h"
#include <time.h>

static volatile sig_atomic_t ticks, bad_info;
static volatile int want_id;

static void on_tick(int sig, siginfo_t *si, void *uc) {
	(void)sig; (void)uc;
	if (si->si_code != SI_TIMER || si->si_timerid != want_id || si->si_value.sival_int != 0x71) bad_info = 1;
	ticks++;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 3, &sa, 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 3;
	sev.sigev_value.sival_int = 0x71;
	timer_t t[3], once;
	for (int i = 0; i < 3; i++)
		if (timer_create(CLOCK_MONOTONIC, &sev, &t[i])) return 3;
	timer_delete(t[0]);
	timer_delete(t[1]);
	want_id = (int)(long)t[2];
	struct itimerspec its = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
	if (timer_settime(t[2], 0, &its, 0)) return 3;
	struct sigevent none;
	memset(&none, 0, sizeof none);
	none.sigev_notify = SIGEV_NONE;
	if (timer_create(CLOCK_REALTIME, &none, &once)) return 3;
	struct itimerspec one = {.it_interval = {0, 0}, .it_value = {1000, 0}};
	if (timer_settime(once, 0, &one, 0)) return 3;
	wl_handle_usr1();
	wl_say("ready pid=%d id=%d oneshot=%d", (int)getpid(), want_id, (int)(long)once);
	for (;;) {
		wl_wait_check();
		int before = ticks;
		struct timespec d = {0, 300000000};
		while (nanosleep(&d, &d)) {}
		int got = ticks - before;
		struct itimerspec cur, left;
		timer_gettime(t[2], &cur);
		timer_gettime(once, &left);
		int ok = got >= 5 && !bad_info && cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 10000000 &&
			 left.it_interval.tv_sec == 0 && left.it_value.tv_sec >= 900 && left.it_value.tv_sec < 1000;
		wl_say("check %s id=%d ticks=+%d bad=%d left=%ld", ok ? "ok" : "bad", want_id, got, (int)bad_info, (long)left.it_value.tv_sec);
	}
}
