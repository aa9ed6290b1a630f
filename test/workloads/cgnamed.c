/* cgnamed NAME PATH CHILDPATH STATEFILE: a task and its child in cgroups of the named cgroup v1
 * hierarchy name=NAME, which no mount shows: the task mounts the hierarchy (making it if need
 * be) at a directory of its own, makes PATH and CHILDPATH, moves itself into PATH and the child
 * into CHILDPATH, and unmounts it again (as zdtm's cgroup tests do; run as root). "ready pid=P
 * child=C" (or "error ..." naming the step that failed). On SIGUSR1: "check ok" when
 * the task's line for HIERARCHY in /proc/self/cgroup says PATH and the child's says CHILDPATH
 * (and the child is alive), else "check bad what=..." naming what it found. */
#include "workload.h"
#include <errno.h>

#include <sys/mount.h>

static char hier[128];

/* the hierarchy mounted at a fresh directory: PATH and CHILDPATH made, us and child moved; 0 or what failed */
static const char *place(const char *name, const char *path, const char *childpath, pid_t child) {
	char dir[] = "/tmp/cgnamed.XXXXXX", opts[160], p[512];
	const char *err = 0;
	if (!mkdtemp(dir)) return "mkdtemp";
	snprintf(opts, sizeof opts, "none,name=%s", name);
	if (mount("cgroup", dir, "cgroup", 0, opts)) {
		rmdir(dir);
		return "mount";
	}
	const char *dirs[2] = {path, childpath};
	pid_t who[2] = {getpid(), child};
	for (int i = 0; i < 2 && !err; i++) {
		/* every level of the path made */
		for (const char *s = dirs[i] + 1; !err; s++) {
			if (*s && *s != '/') continue;
			snprintf(p, sizeof p, "%s%.*s", dir, (int)(s - dirs[i]), dirs[i]);
			if (mkdir(p, 0755) && errno != EEXIST) err = "mkdir";
			if (!*s) break;
		}
		snprintf(p, sizeof p, "%s%s/cgroup.procs", dir, dirs[i]);
		FILE *f = fopen(p, "w");
		if (!f || fprintf(f, "%d", (int)who[i]) < 0 || fclose(f)) err = "move";
	}
	if (umount(dir)) err = err ? err : "umount";
	rmdir(dir);
	return err;
}

/* the path of `pid`'s membership in hier ("" if none; "?" if unreadable) */
static const char *cgroup_of(pid_t pid, char *buf, size_t n) {
	char file[64], line[512];
	snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(file, "r");
	if (!f) return "?";
	buf[0] = 0;
	while (fgets(line, sizeof line, f)) {
		char *a = strchr(line, ':');
		char *b = a ? strchr(a + 1, ':') : 0;
		if (!b) continue;
		*b = 0;
		if (strcmp(a + 1, hier)) continue;
		char *nl = strchr(b + 1, '\n');
		if (nl) *nl = 0;
		snprintf(buf, n, "%s", b + 1);
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv) {
	if (argc < 5) return 2;
	snprintf(hier, sizeof hier, "name=%s", argv[1]);
	wl_detach(argv[4]);
	pid_t child = fork();
	if (child == 0)
		for (;;) pause();
	if (child < 0) { wl_say("error fork"); return 1; }
	const char *err = place(argv[1], argv[2], argv[3], child);
	if (err) {
		kill(child, SIGKILL);
		wl_say("error %s", err);
		return 1;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		char mine[256], its[256];
		wl_wait_check();
		cgroup_of(getpid(), mine, sizeof mine);
		cgroup_of(child, its, sizeof its);
		if (kill(child, 0)) wl_say("check bad what=child-gone");
		else if (strcmp(mine, argv[2])) wl_say("check bad what=self cgroup=%s", mine);
		else if (strcmp(its, argv[3])) wl_say("check bad what=child cgroup=%s", its);
		else wl_say("check ok pid=%d", (int)getpid());
	}
}
