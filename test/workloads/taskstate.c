/* taskstate [slack] STATEFILE: what only a task can ask of itself, set away from its default:
 * the parent-death signal (SIGURG), THP disabled, the main thread's
 * robust futex list at a head of its own, rseq as glibc registered it, a membarrier
 * registration (private expedited), and a POSIX timer that signals one thread by its tid
 * (SIGEV_THREAD_ID, SIGRTMIN+2, every 10 ms), the audit login uid 4242 where it may set it;
 * with "slack", a timer slack of 123457 ns
 * (which CRIU's images cannot carry). "ready pid=N tid=T rseq=R". On SIGUSR1 each is checked:
 * "check ok ticks=+K" or "check bad what=NAME,NAME...". */
#define _GNU_SOURCE
#include "workload.h"
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>


static struct robust_list_head head = {.list = {.next = &head.list}, .futex_offset = 0, .list_op_pending = 0};
static volatile pid_t worker_tid;
static volatile sig_atomic_t ticks, wrong_thread;

static void on_tick(int sig) {
	(void)sig;
	if ((pid_t)syscall(SYS_gettid) != worker_tid) wrong_thread = 1;
	else ticks++;
}

static void *worker(void *arg) {
	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return 0;
}

/* Whether rseq is registered for this thread at glibc's area: a second registration of the
 * same area is refused with EBUSY; an unregistered thread would be registered (0). */
static int rseq_registered(void) {
	if (__rseq_size == 0) return -1; /* glibc did not register it */
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	long r = syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, 0, RSEQ_SIG);
	return r == -1 && errno == EBUSY;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int slack = argc > 2 && !strcmp(argv[1], "slack");
	wl_detach(argv[argc - 1]);
	if (prctl(PR_SET_PDEATHSIG, SIGURG) || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) { wl_say("error prctl"); return 1; }
	if (slack && prctl(PR_SET_TIMERSLACK, 123457)) { wl_say("error slack"); return 1; }
	/* an audit login uid, where this task may set it (root, a kernel with audit) */
	int luid = open("/proc/self/loginuid", O_WRONLY);
	if (luid >= 0) {
		if (write(luid, "4242", 4) != 4) { close(luid); luid = -1; }
		else close(luid);
	}
	if (syscall(SYS_set_robust_list, &head, sizeof head)) { wl_say("error robust"); return 1; }
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)) { wl_say("error membarrier"); return 1; }
	int rseq_at_start = rseq_registered();

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_tick;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGRTMIN + 2, &sa, 0);
	pthread_t th;
	pthread_create(&th, 0, worker, 0);
	while (!worker_tid) usleep(1000);
	/* the main thread blocks the signal: only a delivery to the named thread can count */
	pthread_sigmask(SIG_BLOCK, &set, 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN + 2;
	sev._sigev_un._tid = worker_tid;
	timer_t t;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t)) { wl_say("error timer"); return 1; }
	struct itimerspec its = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
	if (timer_settime(t, 0, &its, 0)) { wl_say("error settime"); return 1; }

	wl_handle_usr1();
	wl_say("ready pid=%d tid=%d rseq=%d loginuid=%d", (int)getpid(), (int)worker_tid, rseq_at_start, luid >= 0);
	for (;;) {
		wl_wait_check();
		char bad[256] = "";
		int sig = 0;
		struct robust_list_head *h = 0;
		size_t len = 0;
		prctl(PR_GET_PDEATHSIG, &sig);
		int before = ticks;
		usleep(200000);
		int got = ticks - before;
#define BAD(name) strcat(strcat(bad, *bad ? "," : ""), name)
		if (sig != SIGURG) BAD("pdeathsig");
		if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1) BAD("thp-disable");
		if (prctl(PR_GET_TIMERSLACK) != (slack ? 123457 : 50000)) BAD("timerslack");
		if (syscall(SYS_get_robust_list, 0, &h, &len) || h != &head || len != sizeof head) BAD("robust-list");
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0)) BAD("membarrier");
		if (rseq_registered() != rseq_at_start) BAD("rseq");
		if (luid >= 0) {
			char lb[16] = "";
			int f = open("/proc/self/loginuid", O_RDONLY);
			if (f < 0 || read(f, lb, sizeof lb - 1) <= 0 || strcmp(lb, "4242")) BAD("loginuid");
			if (f >= 0) close(f);
		}
		if (wrong_thread) BAD("timer-thread");
		if (got < 5) BAD("timer-ticks");
		if (*bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok ticks=+%d", got);
	}
}
