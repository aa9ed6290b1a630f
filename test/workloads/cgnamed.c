/* cgnamed NAME PATH CHILDPATH THREADPATH STATEFILE: a task, its child and a second thread of
 * its own in cgroups of the named cgroup v1 hierarchy name=NAME, which no mount shows: the task
 * mounts the hierarchy (making it if need be) at a directory of its own, makes the paths, moves
 * itself into PATH, the child into CHILDPATH and its thread alone into THREADPATH (v1 tasks
 * file), and unmounts it again (as zdtm's cgroup tests do; run as root). "ready pid=P child=C
 * thread=T" (or "error ..." naming the step that failed). On SIGUSR1: "check ok" when the
 * hierarchy's line in /proc/PID/cgroup says PATH for the task, CHILDPATH for the child (alive)
 * and THREADPATH for the thread (/proc/self/task/T/cgroup), else "check bad what=..." naming
 * what it found. */
#include "workload.h"
#include <errno.h>

#include <sys/mount.h>
#include <pthread.h>
#include <sys/syscall.h>

static char hier[128];

static volatile pid_t thread_tid;

static void *thread_main(void *arg) {
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return 0;
}

/* the hierarchy mounted at a fresh directory: the paths made, us, the child and the thread moved; 0 or what failed */
static const char *place(const char *name, const char *path, const char *childpath, const char *threadpath, pid_t child) {
	char dir[] = "/tmp/cgnamed.XXXXXX", opts[160], p[512];
	const char *err = 0;
	if (!mkdtemp(dir)) return "mkdtemp";
	snprintf(opts, sizeof opts, "none,name=%s", name);
	if (mount("cgroup", dir, "cgroup", 0, opts)) {
		rmdir(dir);
		return "mount";
	}
	const char *dirs[3] = {path, childpath, threadpath};
	pid_t who[3] = {getpid(), child, thread_tid};
	for (int i = 0; i < 3 && !err; i++) {
		/* every level of the path made */
		for (const char *s = dirs[i] + 1; !err; s++) {
			if (*s && *s != '/') continue;
			snprintf(p, sizeof p, "%s%.*s", dir, (int)(s - dirs[i]), dirs[i]);
			if (mkdir(p, 0755) && errno != EEXIST) err = "mkdir";
			if (!*s) break;
		}
		/* (the thread alone: its tid into tasks, after its process moved) */
		snprintf(p, sizeof p, "%s%s/%s", dir, dirs[i], i == 2 ? "tasks" : "cgroup.procs");
		FILE *f = fopen(p, "w");
		if (!f || fprintf(f, "%d", (int)who[i]) < 0 || fclose(f)) err = "move";
	}
	if (umount(dir)) err = err ? err : "umount";
	rmdir(dir);
	return err;
}

/* the path of `pid`'s membership in hier ("" if none; "?" if unreadable) */
static const char *cgroup_of(pid_t pid, pid_t tid, char *buf, size_t n) {
	char file[64], line[512];
	if (tid) snprintf(file, sizeof file, "/proc/%d/task/%d/cgroup", (int)pid, (int)tid);
	else snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
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
	if (argc < 6) return 2;
	snprintf(hier, sizeof hier, "name=%s", argv[1]);
	wl_detach(argv[5]);
	pid_t child = fork();
	if (child == 0)
		for (;;) pause();
	if (child < 0) { wl_say("error fork"); return 1; }
	pthread_t th;
	if (pthread_create(&th, 0, thread_main, 0)) { wl_say("error thread"); return 1; }
	while (!thread_tid) usleep(1000);
	const char *err = place(argv[1], argv[2], argv[3], argv[4], child);
	if (err) {
		kill(child, SIGKILL);
		wl_say("error %s", err);
		return 1;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d thread=%d", (int)getpid(), (int)child, (int)thread_tid);
	for (;;) {
		char mine[256], its[256], thr[256];
		wl_wait_check();
		cgroup_of(getpid(), 0, mine, sizeof mine);
		cgroup_of(child, 0, its, sizeof its);
		cgroup_of(getpid(), thread_tid, thr, sizeof thr);
		if (kill(child, 0)) wl_say("check bad what=child-gone");
		else if (strcmp(mine, argv[2])) wl_say("check bad what=self cgroup=%s", mine);
		else if (strcmp(its, argv[3])) wl_say("check bad what=child cgroup=%s", its);
		else if (strcmp(thr, argv[4])) wl_say("check bad what=thread cgroup=%s", thr);
		else wl_say("check ok pid=%d", (int)getpid());
	}
}
