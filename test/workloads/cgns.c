/* cgns NAME NSPATH SUB STATEFILE: a task and its child in a cgroup namespace of their own (run as
 * root). The task mounts the named cgroup v1 hierarchy name=NAME (made by that) at a directory of
 * its own, makes NSPATH and NSPATH/SUB, moves itself into NSPATH, unshares its cgroup namespace
 * there (NSPATH becomes the namespace's root in that hierarchy; in every other hierarchy the
 * cgroup it is in), moves itself into NSPATH/SUB and unmounts the hierarchy; then forks the
 * child (in the namespace too). "ready pid=P child=C" (or "error ..." naming the step that
 * failed). On SIGUSR1: "check ok" when /proc/self/cgroup (as the namespace shows it: /SUB in the
 * named hierarchy, / in the others) reads as it did when ready, the child's too, and the child
 * shares the task's cgroup namespace; else "check bad what=..." naming what differs. */
#include "workload.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

static char first[4096];

static int write_pid(const char *file) {
	FILE *f = fopen(file, "w");
	if (!f) return -1;
	int bad = fprintf(f, "%d", (int)getpid()) < 0;
	return fclose(f) || bad ? -1 : 0;
}

/* placed, the namespace made at NSPATH: 0 or what failed */
static const char *place(const char *name, const char *nspath, const char *sub) {
	char dir[] = "/tmp/cgns.XXXXXX", opts[160], p[512];
	const char *err = 0;
	if (!mkdtemp(dir)) return "mkdtemp";
	snprintf(opts, sizeof opts, "none,name=%s", name);
	if (mount("cgroup", dir, "cgroup", 0, opts)) {
		rmdir(dir);
		return "mount";
	}
	snprintf(p, sizeof p, "%s%s", dir, nspath);
	if (mkdir(p, 0755) && errno != EEXIST) err = "mkdir";
	snprintf(p, sizeof p, "%s%s/%s", dir, nspath, sub);
	if (!err && mkdir(p, 0755) && errno != EEXIST) err = "mkdir-sub";
	snprintf(p, sizeof p, "%s%s/cgroup.procs", dir, nspath);
	if (!err && write_pid(p)) err = "move";
	if (!err && unshare(CLONE_NEWCGROUP)) err = "unshare";
	/* (the mount was made outside the namespace: its paths are still the hierarchy's) */
	snprintf(p, sizeof p, "%s%s/%s/cgroup.procs", dir, nspath, sub);
	if (!err && write_pid(p)) err = "move-sub";
	if (umount(dir)) err = err ? err : "umount";
	rmdir(dir);
	return err;
}

int main(int argc, char **argv) {
	if (argc < 5) return 2;
	wl_detach(argv[4]);
	const char *err = place(argv[1], argv[2], argv[3]);
	if (err) {
		wl_say("error %s errno=%d", err, errno);
		return 1;
	}
	if (wl_read_file("/proc/self/cgroup", first, sizeof first)) {
		wl_say("error read");
		return 1;
	}
	pid_t child = fork();
	if (child == 0)
		for (;;) pause();
	if (child < 0) {
		wl_say("error fork");
		return 1;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		char now[4096], its[4096], p[64];
		struct stat a, b;
		wl_wait_check();
		snprintf(p, sizeof p, "/proc/%d/cgroup", (int)child);
		if (kill(child, 0)) wl_say("check bad what=child-gone");
		else if (wl_read_file("/proc/self/cgroup", now, sizeof now) || strcmp(now, first)) wl_say("check bad what=self cgroup=%s", now);
		else if (wl_read_file(p, its, sizeof its) || strcmp(its, first)) wl_say("check bad what=child cgroup=%s", its);
		else if ((snprintf(p, sizeof p, "/proc/%d/ns/cgroup", (int)child), stat(p, &b)) || stat("/proc/self/ns/cgroup", &a) || a.st_ino != b.st_ino) wl_say("check bad what=child-ns");
		else wl_say("check ok pid=%d", (int)getpid());
	}
}
