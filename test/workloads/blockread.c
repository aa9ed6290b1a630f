/* blockread STATEFILE: blocked in read(2) on an empty pipe it also holds the write end of.
 * The SIGUSR1 handler writes a byte into the pipe; the read then returns and the
 * main loop writes "check ok n=1" (proving the blocked read survived). */
#include "workload.h"

static int p[2];
static void on_usr1(int sig) { (void)sig; (void)!write(p[1], "x", 1); }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	if (pipe(p)) return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, 0);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		char c;
		ssize_t n = read(p[0], &c, 1);
		wl_say("check %s n=%d", n == 1 && c == 'x' ? "ok" : "bad", (int)n);
	}
}
