/* A container-shaped tree whose root mount is shared with a nested mount namespace, as zdtm's
 * mntns_shared_bind and inotify01 make them (issue 17, mounts): in a mount and pid namespace of
 * its own, its root is ROOT (the state file's directory, bound on itself, pivot_root), then
 *   /      made shared (peer group G)
 *   /b     a bind of /d: a peer of / (G)
 * the init forks a child that unshares a mount namespace (its / and /b copies: peers of the
 * init's, G), makes its / a slave of G (what it mounts stays its own) and mounts there only
 *   /n     a tmpfs with w.txt
 * then the init mounts /d/sub, a tmpfs, which the kernel copies to /b/sub and to the child's
 * /b/sub (one peer group S) and /d/sub (a slave of S), and holds an inotify watch (IN_MODIFY, wd 1) on the
 * child's /n/w.txt, opened through /proc/CHILD/root (the init's namespace has no /n mount).
 * The program must lie in ROOT as ROOT/mntshroot, built static (the init execs it from inside).
 *
 *   mntshroot STATEFILE      (STATEFILE in ROOT)
 *
 * SIGUSR1 (to the init): "check ok" when it is pid 1 with the child alive, / and /b shared in
 * one group, the child's / a slave of it and its /b in it, /d/sub and /b/sub shared in one group with the
 * child's copies as made, nothing at /n here but a tmpfs there, and a write to the child's /n/w.txt
 * queues IN_MODIFY on watch 1. */
#include "workload.h"
#include "rootct.h"
#include <sys/inotify.h>

static pid_t kid;
static int ify = -1;

static const char *check(void) {
	char kmi[64], w[64];
	if (getpid() != 1) return "not pid 1";
	if (waitpid(kid, 0, WNOHANG) != 0) return "child gone";
	snprintf(kmi, sizeof kmi, "/proc/%d/mountinfo", (int)kid);
	struct wl_mount rt = wl_mount_in("/proc/self/mountinfo", "/"), b = wl_mount_in("/proc/self/mountinfo", "/b");
	struct wl_mount krt = wl_mount_in(kmi, "/"), kb = wl_mount_in(kmi, "/b");
	if (!rt.found || !rt.shared || rt.master) return "/ is not shared";
	if (!b.found || b.shared != rt.shared) return "/b is not a peer of /";
	if (!krt.found || krt.shared || krt.master != rt.shared) return "the child's / is not a slave of the init's group";
	if (!kb.found || kb.shared != rt.shared) return "the child's /b is not a peer of the init's /";
	struct wl_mount s = wl_mount_in("/proc/self/mountinfo", "/d/sub"), bs = wl_mount_in("/proc/self/mountinfo", "/b/sub");
	struct wl_mount ks = wl_mount_in(kmi, "/d/sub"), kbs = wl_mount_in(kmi, "/b/sub");
	if (!s.found || strcmp(s.fs, "tmpfs") || !s.shared || s.shared == rt.shared) return "/d/sub";
	/* (the child's /d/sub: a copy the kernel made below its slave /, a slave of /d/sub's group) */
	if (!bs.found || bs.shared != s.shared || kbs.shared != s.shared) return "the copies of /d/sub on /b are not its peers";
	if (ks.shared || ks.master != s.shared) return "the child's /d/sub is not a slave of /d/sub's group";
	if (wl_mount_in("/proc/self/mountinfo", "/n").found) return "/n mounted in the init's namespace";
	if (strcmp(wl_mount_in(kmi, "/n").fs, "tmpfs")) return "the child's /n is not a tmpfs";
	/* the watch is on the child's file: a write there queues IN_MODIFY on wd 1 */
	snprintf(w, sizeof w, "/proc/%d/root/n/w.txt", (int)kid);
	int fd = open(w, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "x", 1) != 1) return "write the child's n/w.txt";
	close(fd);
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(ify, buf, sizeof buf);
	int seen = 0;
	for (ssize_t o = 0; n > 0 && o < n;) {
		struct inotify_event *e = (struct inotify_event *)(buf + o);
		if (e->wd == 1 && (e->mask & IN_MODIFY)) seen = 1;
		o += sizeof *e + e->len;
	}
	while (read(ify, buf, sizeof buf) > 0)
		;
	return seen ? 0 : "no IN_MODIFY on watch 1";
}

/* the init, exec'd from inside its root */
static int init_main(int ready) {
	if (ct_init_begin()) return 1;
	if (mount(0, "/", 0, MS_SHARED, 0) || mount("/d", "/b", 0, MS_BIND, 0)) {
		wl_say("error shared / or bind /b: %s", strerror(errno));
		return 1;
	}
	int sync[2];
	if (pipe(sync)) return 1;
	kid = fork();
	if (kid < 0) return 1;
	if (kid == 0) {
		close(sync[0]);
		int fd;
		if (unshare(CLONE_NEWNS) || mount(0, "/", 0, MS_SLAVE, 0) || mount("mntshroot-n", "/n", "tmpfs", 0, "size=64k") || (fd = open("/n/w.txt", O_CREAT | O_WRONLY, 0644)) < 0) _exit(1);
		close(fd);
		if (write(sync[1], "k", 1) != 1) _exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	char c;
	if (read(sync[0], &c, 1) != 1) {
		wl_say("error child setup");
		return 1;
	}
	close(sync[0]);
	char w[64];
	snprintf(w, sizeof w, "/proc/%d/root/n/w.txt", (int)kid);
	if (mount("mntshroot-sub", "/d/sub", "tmpfs", 0, "size=64k") || (ify = inotify_init1(IN_NONBLOCK)) < 0 || inotify_add_watch(ify, w, IN_MODIFY) != 1) {
		wl_say("error /d/sub or the watch: %s", strerror(errno));
		return 1;
	}
	return wl_serve(ready, check);
}

/* in the new namespaces, before the exec: ROOT becomes the root */
static int setup(const char *root, const char *arg) {
	(void)arg;
	if (mount(0, "/", 0, MS_REC | MS_PRIVATE, 0)) return 1;
	if (mount(root, root, 0, MS_BIND, 0)) return 2;
	const char *const dirs[] = { "proc", "dev", "old", "d", "d/sub", "b", "n" };
	if (ct_root_dirs(root, dirs, sizeof dirs / sizeof *dirs)) return 3;
	return ct_pivot(root) ? 4 : 0;
}

int main(int argc, char **argv) {
	return ct_main(argc, argv, "mntshroot", setup, init_main);
}
