/* jobstop STATEFILE: job control without a terminal. The workload forks a child that leads its
 * own process group (not an orphaned one: its parent is in the same session, in another group),
 * so SIGTSTP stops it as a shell's job would be stopped. The child counts in a shared word.
 * The test stops the child from outside. On SIGUSR1 the parent reports what waitid(WSTOPPED,
 * WNOWAIT) tells of the child, and the count: "check stopped=SIG count=N" while the child is
 * stopped by SIG, "check running count=N" once it runs again. */
#include <sys/mman.h>
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	volatile unsigned long *count = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (count == MAP_FAILED) { wl_say("error mmap"); return 1; }
	pid_t child = fork();
	if (child < 0) { wl_say("error fork"); return 1; }
	if (child == 0) {
		setpgid(0, 0);
		for (;;) {
			(*count)++;
			usleep(10000);
		}
	}
	setpgid(child, child); /* either side may run first: the group exists before "ready" */
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, child, &si, WSTOPPED | WNOWAIT | WNOHANG)) { wl_say("check bad waitid"); continue; }
		if (si.si_pid == child && si.si_code == CLD_STOPPED)
			wl_say("check stopped=%d count=%lu", si.si_status, *count);
		else
			wl_say("check running count=%lu", *count);
	}
}
