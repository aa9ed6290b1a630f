/* Container-shaped workloads (mntext, mntshroot): a tree in a mount and pid namespace of its
 * own whose root is ROOT, the state file's directory (bound on itself, pivot_root), its init
 * exec'd from inside as /NAME (the program lies in ROOT, built static). After workload.h. */
#ifndef CRTOOLS_ROOTCT_H
#define CRTOOLS_ROOTCT_H
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

/* The init's first steps from inside its root: SIGUSR1 answered, a proc of its pid namespace
 * on /proc, stdio on /dev/null, working in / (0; 1 said "error"). */
static inline int ct_init_begin(void) {
	wl_handle_usr1();
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) {
		wl_say("error mount /proc: %s", strerror(errno));
		return 1;
	}
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	return chdir("/") ? 1 : 0;
}

/* ROOT's directories DIRS (N of them; "old" among them for ct_pivot) and its dev/null (0; -1 failed). */
static inline int ct_root_dirs(const char *root, const char *const *dirs, unsigned n) {
	char p[4096];
	for (unsigned i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
		mkdir(p, 0755);
	}
	snprintf(p, sizeof p, "%s/dev/null", root);
	return mknod(p, S_IFCHR | 0666, makedev(1, 3)) && errno != EEXIST ? -1 : 0;
}

/* ROOT (a mount) becomes the root, the old one detached (0; -1 failed). */
static inline int ct_pivot(const char *root) {
	return chdir(root) || syscall(SYS_pivot_root, ".", "old") || umount2("/old", MNT_DETACH) || chdir("/") ? -1 : 0;
}

/* main of container workload NAME: as `NAME --init FD STATE` it is the init (init(FD), from
 * inside its root); as `NAME [ARG] STATEFILE` it detaches, unshares a pid namespace and forks
 * the init, which unshares a mount namespace, runs setup(ROOT, ARG) (0 ok, else a step number;
 * ROOT becomes its root) and execs /NAME there. */
static inline int ct_main(int argc, char **argv, const char *name, int (*setup)(const char *root, const char *arg), int (*init)(int ready)) {
	if (argc == 4 && strcmp(argv[1], "--init") == 0) {
		wl_state = argv[3];
		return init(atoi(argv[2]));
	}
	if (argc < 2) return 2;
	const char *arg = argc > 2 ? argv[1] : 0, *state = argv[argc - 1];
	char root[3072];
	snprintf(root, sizeof root, "%s", state);
	char *slash = strrchr(root, '/');
	if (!slash) return 2;
	*slash = 0;
	const char *base = slash + 1;
	wl_detach(state);
	if (unshare(CLONE_NEWPID)) {
		wl_say("error unshare");
		return 1;
	}
	int p[2];
	if (pipe(p)) return 1;
	pid_t init_pid = fork();
	if (init_pid < 0) return 1;
	if (init_pid == 0) {
		close(p[0]);
		setsid();
		/* the mount namespace is the init's alone (the pivot moves every task of it) */
		int e = unshare(CLONE_NEWNS) ? 100 : setup(root, arg);
		if (e) {
			wl_say("error setup step %d: %s", e, strerror(errno));
			_exit(1);
		}
		char fd[16], st[4200], exe[256];
		snprintf(fd, sizeof fd, "%d", p[1]);
		snprintf(st, sizeof st, "/%s", base);
		snprintf(exe, sizeof exe, "/%s", name);
		execl(exe, name, "--init", fd, st, (char *)0);
		_exit(127);
	}
	return wl_init_ready(p, init_pid);
}
#endif
