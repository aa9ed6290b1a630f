/* nslaunch STATEFILE NSLIST PROGRAM [ARGS...]: detach from the starter, unshare the namespaces
 * named in NSLIST (comma-separated: pid, ipc, uts), fork the child that is the new pid
 * namespace's init (pid 1 there), which leads a session of its own and execs PROGRAM in place;
 * the outside parent says "ready pid=<the init as crtools sees it>" and exits. For real programs
 * that must run as a container's init (e.g. PostgreSQL in its own IPC namespace). */
#include "workload.h"

#include <sched.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	wl_detach(argv[1]);
	int flags = 0;
	char list[256];
	snprintf(list, sizeof list, "%s", argv[2]);
	for (char *t = strtok(list, ","); t; t = strtok(0, ",")) {
		if (!strcmp(t, "pid")) flags |= CLONE_NEWPID;
		else if (!strcmp(t, "ipc")) flags |= CLONE_NEWIPC;
		else if (!strcmp(t, "uts")) flags |= CLONE_NEWUTS;
		else {
			wl_say("error namespace %s", t);
			return 2;
		}
	}
	if (unshare(flags)) {
		wl_say("error unshare");
		return 1;
	}
	pid_t c = fork();
	if (c < 0) return 1;
	if (c == 0) {
		setsid();
		execv(argv[3], argv + 3);
		_exit(127);
	}
	wl_say("ready pid=%d", (int)c);
	return 0;
}
