/* dumpable [off] STATEFILE: a process and its child that changed their effective uid to 4321
 * (real and saved uid stay root's, the fs uid back to root's so that the state file can be
 * written), which clears the dumpable flag, and then set it again (PR_SET_DUMPABLE 1): their
 * /proc files are then 4321's, who may read them. With "off" they leave it cleared (/proc
 * files root's). A restore that sets the ids after the flag clears it again.
 * "ready pid=P child=C"; on SIGUSR1 the parent checks its own flag and the child's (which
 * answers through a pipe), and the owner of /proc/P and /proc/C: "check ok" or "check bad what=...". */
#define _GNU_SOURCE
#include "workload.h"
#include <sys/fsuid.h>
#include <sys/prctl.h>

#define UID 4321

static int ids_and_flag(int want) {
	if (setresuid(0, UID, 0)) return -1;
	setfsuid(0);
	return prctl(PR_SET_DUMPABLE, want, 0, 0, 0);
}

/* the flag, and the owner of /proc/PID's files as it goes with it */
static int as_set(pid_t pid, int want) {
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (stat(path, &st)) return 0;
	return st.st_uid == (want ? UID : 0);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int want = !(argc > 2 && !strcmp(argv[1], "off"));
	wl_detach(argv[argc - 1]);
	int ask[2], answer[2];
	if (pipe(ask) || pipe(answer)) return 3;
	pid_t child = fork();
	if (child < 0) return 4;
	if (child == 0) {
		if (ids_and_flag(want)) _exit(1);
		char b;
		while (read(ask[0], &b, 1) == 1) {
			char v = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == want && geteuid() == UID ? 'y' : 'n';
			if (write(answer[1], &v, 1) != 1) _exit(1);
		}
		_exit(0);
	}
	if (ids_and_flag(want)) { wl_say("error ids"); return 5; }
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		char b = 'c', v = 0;
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != want || geteuid() != UID) bad = "flag";
		else if (!as_set(getpid(), want)) bad = "proc-owner";
		else if (write(ask[1], &b, 1) != 1 || read(answer[0], &v, 1) != 1 || v != 'y') bad = "child-flag";
		else if (!as_set(child, want)) bad = "child-proc-owner";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
