/* sleeper STATEFILE: one task sleeping; verdict "check ok" (it is alive and answers). */
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		wl_say("check ok pid=%d", (int)getpid());
	}
}
