/* A container-shaped tree whose external mounts are slaves of a peer group of the host's, as
 * zdtm's mnt_ext_multiple makes them: in a mount and pid namespace of its own, its root is
 * ROOT (the state file's directory, bound on itself and made private, pivot_root), and
 *   /ext   a bind of SRC/a, where SRC is a shared mount of the host (peer group H): a slave of H
 *   /ext2  a bind of /ext: a slave of H too
 *   /proc  a proc of its pid namespace
 * The program must lie in ROOT as ROOT/mntext, built static (the init execs it from inside).
 *
 *   mntext SRC STATEFILE      (STATEFILE in ROOT; SRC/a holds a.txt)
 *
 * SIGUSR1 (to the init): "check ok" when it is pid 1 of its own /proc, / is private, /ext and
 * /ext2 are slaves (not shared) of one peer group, that master not a group of any mount of the
 * tree, and /ext/a.txt and /ext2/a.txt hold "ext\n". */
#include "workload.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

struct seen {
	int found, shared, master;
};

/* The propagation of mount point PATH (the last line: the top of a stack). */
static struct seen mountinfo_of(const char *path) {
	struct seen r = { 0, 0, 0 };
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return r;
	char line[8192], mp[4096];
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%*d %*d %*u:%*u %*s %4095s", mp) != 1 || strcmp(mp, path)) continue;
		memset(&r, 0, sizeof r);
		r.found = 1;
		char *o = strstr(line, " shared:");
		if (o) r.shared = atoi(o + 8);
		o = strstr(line, " master:");
		if (o) r.master = atoi(o + 8);
	}
	fclose(f);
	return r;
}

/* 1 when a mount of this namespace is in peer group g */
static int group_here(int g) {
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return 1;
	char line[8192], want[32];
	snprintf(want, sizeof want, " shared:%d ", g);
	int found = 0;
	while (fgets(line, sizeof line, f)) found |= strstr(line, want) != 0;
	fclose(f);
	return found;
}

static int holds(const char *p, const char *text) {
	char buf[256];
	int fd = open(p, O_RDONLY);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) return 0;
	buf[n] = 0;
	return strcmp(buf, text) == 0;
}

static const char *check(void) {
	if (getpid() != 1) return "not pid 1";
	char self[64];
	ssize_t n = readlink("/proc/self", self, sizeof self - 1);
	if (n <= 0) return "no /proc/self";
	self[n] = 0;
	if (strcmp(self, "1")) return "/proc is not this pid namespace's";
	struct seen rt = mountinfo_of("/"), e = mountinfo_of("/ext"), e2 = mountinfo_of("/ext2");
	if (!rt.found || rt.shared || rt.master) return "/ propagation";
	if (!e.found || e.shared || !e.master) return "/ext is not a slave";
	if (!e2.found || e2.shared || e2.master != e.master) return "/ext2 is not a slave of /ext's master";
	if (group_here(e.master)) return "the master of /ext is a group of the tree's";
	if (!holds("/ext/a.txt", "ext\n") || !holds("/ext2/a.txt", "ext\n")) return "a.txt";
	return 0;
}

/* the init, exec'd from inside its root */
static int init_main(int ready) {
	wl_handle_usr1();
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) {
		wl_say("error mount /proc: %s", strerror(errno));
		return 1;
	}
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	if (chdir("/")) return 1;
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	for (;;) {
		wl_wait_check();
		const char *bad = check();
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

/* in the new namespaces, before the exec: the mounts, then ROOT becomes the root */
static int setup(const char *root, const char *src) {
	char p[4096], q[4096];
	/* the host's mounts stay its own (nothing of ours reaches them); they still send to ours */
	if (mount(0, "/", 0, MS_REC | MS_SLAVE, 0)) return 1;
	if (mount(root, root, 0, MS_BIND, 0) || mount(0, root, 0, MS_PRIVATE, 0)) return 2;
	const char *dirs[] = { "ext", "ext2", "proc", "dev", "old" };
	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
		mkdir(p, 0755);
	}
	snprintf(p, sizeof p, "%s/dev/null", root);
	if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) && errno != EEXIST) return 3;
	/* a bind of SRC/a: SRC's copy here is a slave of the host's group, and so is the bind */
	snprintf(p, sizeof p, "%s/a", src);
	snprintf(q, sizeof q, "%s/ext", root);
	if (mount(p, q, 0, MS_BIND, 0) || mount(0, q, 0, MS_SLAVE, 0)) return 4;
	snprintf(p, sizeof p, "%s/ext2", root);
	if (mount(q, p, 0, MS_BIND, 0)) return 5;
	if (chdir(root) || syscall(SYS_pivot_root, ".", "old") || umount2("/old", MNT_DETACH) || chdir("/")) return 6;
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "--init") == 0) {
		wl_state = argv[3];
		return init_main(atoi(argv[2]));
	}
	if (argc < 3) return 2;
	const char *src = argv[1], *state = argv[2];
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
	pid_t init = fork();
	if (init < 0) return 1;
	if (init == 0) {
		close(p[0]);
		setsid();
		/* the mount namespace is the init's alone (the pivot moves every task of it) */
		int e = unshare(CLONE_NEWNS) ? 7 : setup(root, src);
		if (e) {
			wl_say("error setup step %d: %s", e, strerror(errno));
			_exit(1);
		}
		char fd[16], st[4200];
		snprintf(fd, sizeof fd, "%d", p[1]);
		snprintf(st, sizeof st, "/%s", base);
		execl("/mntext", "mntext", "--init", fd, st, (char *)0);
		_exit(127);
	}
	return wl_init_ready(p, init);
}
