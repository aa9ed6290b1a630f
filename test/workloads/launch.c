/* launch STATEFILE PROGRAM [ARGS...]: detach from the starter, write "ready pid=N" and
 * exec PROGRAM in place (pid N is then PROGRAM itself, e.g. /bin/sh -c 'while ...'). */
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	wl_detach(argv[1]);
	wl_say("ready pid=%d", (int)getpid());
	execv(argv[2], argv + 2);
	wl_say("error exec");
	return 127;
}
