/* credthreads STATEFILE: three threads, then the process switches to gid 1234 and groups {5678}
 * (glibc applies setresgid/setgroups to every thread) and makes itself dumpable again (the gid
 * change cleared the flag), as servers that drop privileges and want core dumps do. On SIGUSR1
 * every thread's own Gid and Groups lines in /proc/self/task/TID/status must show them, and the
 * flag must be set: "check ok threads=4" or "check bad tid=..."/"check bad dumpable=N". */
#include "workload.h"
#include <dirent.h>
#include <grp.h>
#include <pthread.h>
#include <sys/prctl.h>

static void *idle(void *arg) {
	(void)arg;
	for (;;) pause();
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	pthread_t t;
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t, 0, idle, 0)) return 1;
	gid_t g = 5678;
	if (setgroups(1, &g) || setresgid(1234, 1234, 1234)) { wl_say("error setgid"); return 1; }
	if (prctl(PR_GET_DUMPABLE) != 0 || prctl(PR_SET_DUMPABLE, 1)) { wl_say("error dumpable"); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		DIR *d = opendir("/proc/self/task");
		struct dirent *e;
		int n = 0;
		char bad[300] = "";
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.') continue;
			char path[300], line[256], gid[256] = "", groups[256] = "";
			snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
			FILE *f = fopen(path, "r");
			while (f && fgets(line, sizeof line, f)) {
				if (!strncmp(line, "Gid:", 4)) snprintf(gid, sizeof gid, "%s", line + 4);
				if (!strncmp(line, "Groups:", 7)) snprintf(groups, sizeof groups, "%s", line + 7);
			}
			if (f) fclose(f);
			n++;
			if (!strstr(gid, "1234\t1234\t1234\t1234") || !strstr(groups, "5678")) snprintf(bad, sizeof bad, "tid=%s", e->d_name);
		}
		if (d) closedir(d);
		int dumpable = prctl(PR_GET_DUMPABLE);
		if (bad[0]) wl_say("check bad %s", bad);
		else if (dumpable != 1) wl_say("check bad dumpable=%d", dumpable);
		else wl_say("check ok threads=%d", n);
	}
}
