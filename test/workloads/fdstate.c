/* fdstate [owner|async] STATEFILE: what an open file description carries besides its kind,
 * set on pipes: the read end of pipe A non-blocking, pipe B grown to 1 MiB (F_SETPIPE_SZ)
 * holding 3000 bytes; with "owner", pipe C's read end has an owner and a signal for I/O
 * (F_SETOWN_EX to this process, F_SETSIG SIGRTMIN+1), with "async" O_ASYNC as well. On SIGUSR1
 * each is checked as set: "check ok" or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <string.h>
#include <sys/ioctl.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *mode = argc > 2 ? argv[1] : "";
	int owner = !strcmp(mode, "owner") || !strcmp(mode, "async"), async = !strcmp(mode, "async");
	wl_detach(argv[argc - 1]);
	int a[2], b[2], c[2];
	if (pipe(a) || pipe(b) || pipe(c)) { wl_say("error pipe"); return 1; }
	if (fcntl(a[0], F_SETFL, O_NONBLOCK)) return 1;
	if (fcntl(b[1], F_SETPIPE_SZ, 1 << 20) < (1 << 20)) { wl_say("error pipe size"); return 1; }
	char buf[3000];
	memset(buf, 'q', sizeof buf);
	if (write(b[1], buf, sizeof buf) != sizeof buf) return 1;
	struct f_owner_ex own = {.type = F_OWNER_PID, .pid = getpid()};
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, 0);
	if (owner && (fcntl(c[0], F_SETOWN_EX, &own) || fcntl(c[0], F_SETSIG, SIGRTMIN + 1))) { wl_say("error owner"); return 1; }
	if (async && fcntl(c[0], F_SETFL, O_ASYNC)) { wl_say("error async"); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct f_owner_ex got = {0};
		int n = 0;
		if (!(fcntl(a[0], F_GETFL) & O_NONBLOCK)) bad = "nonblock";
		else if (fcntl(b[0], F_GETPIPE_SZ) != (1 << 20)) bad = "pipe-size";
		else if (ioctl(b[0], FIONREAD, &n) || n != 3000) bad = "pipe-data";
		else if (owner && (fcntl(c[0], F_GETOWN_EX, &got) || got.type != F_OWNER_PID || got.pid != getpid())) bad = "owner";
		else if (owner && fcntl(c[0], F_GETSIG) != SIGRTMIN + 1) bad = "sig";
		else if (!(fcntl(c[0], F_GETFL) & O_ASYNC) != !async) bad = "async";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
