/* zombies STATEFILE: two children the parent never waits for: one exits with status 7, one
 * is killed by SIGTERM. On SIGUSR1 the parent looks at both without reaping them (WNOWAIT):
 * "check ok" when both are still its zombies with those statuses, else "check bad what=...". */
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	pid_t a = fork();
	if (a == 0) _exit(7);
	pid_t b = fork();
	if (b == 0) {
		kill(getpid(), SIGTERM);
		_exit(1);
	}
	if (a < 0 || b < 0) { wl_say("error fork"); return 1; }
	usleep(100000);
	wl_handle_usr1();
	wl_say("ready pid=%d a=%d b=%d", (int)getpid(), (int)a, (int)b);
	for (;;) {
		wl_wait_check();
		siginfo_t si;
		const char *bad = 0;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != a || si.si_code != CLD_EXITED || si.si_status != 7) bad = "exited";
		memset(&si, 0, sizeof si);
		if (!bad && (waitid(P_PID, (id_t)b, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != b || si.si_code != CLD_KILLED || si.si_status != SIGTERM)) bad = "killed";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
