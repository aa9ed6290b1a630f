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
#include "rootct.h"

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
	struct wl_mount rt = wl_mount_in("/proc/self/mountinfo", "/"), e = wl_mount_in("/proc/self/mountinfo", "/ext"), e2 = wl_mount_in("/proc/self/mountinfo", "/ext2");
	if (!rt.found || rt.shared || rt.master) return "/ propagation";
	if (!e.found || e.shared || !e.master) return "/ext is not a slave";
	if (!e2.found || e2.shared || e2.master != e.master) return "/ext2 is not a slave of /ext's master";
	if (group_here(e.master)) return "the master of /ext is a group of the tree's";
	if (!holds("/ext/a.txt", "ext\n") || !holds("/ext2/a.txt", "ext\n")) return "a.txt";
	return 0;
}

/* the init, exec'd from inside its root */
static int init_main(int ready) {
	if (ct_init_begin()) return 1;
	return wl_serve(ready, check);
}

/* in the new namespaces, before the exec: the mounts, then ROOT becomes the root */
static int setup(const char *root, const char *src) {
	char p[4096], q[4096];
	/* the host's mounts stay its own (nothing of ours reaches them); they still send to ours */
	if (mount(0, "/", 0, MS_REC | MS_SLAVE, 0)) return 1;
	if (mount(root, root, 0, MS_BIND, 0) || mount(0, root, 0, MS_PRIVATE, 0)) return 2;
	const char *const dirs[] = { "ext", "ext2", "proc", "dev", "old" };
	if (ct_root_dirs(root, dirs, sizeof dirs / sizeof *dirs)) return 3;
	/* a bind of SRC/a: SRC's copy here is a slave of the host's group, and so is the bind */
	snprintf(p, sizeof p, "%s/a", src);
	snprintf(q, sizeof q, "%s/ext", root);
	if (mount(p, q, 0, MS_BIND, 0) || mount(0, q, 0, MS_SLAVE, 0)) return 4;
	snprintf(p, sizeof p, "%s/ext2", root);
	if (mount(q, p, 0, MS_BIND, 0)) return 5;
	if (ct_pivot(root)) return 6;
	return 0;
}

int main(int argc, char **argv) {
	return ct_main(argc, argv, "mntext", setup, init_main);
}
