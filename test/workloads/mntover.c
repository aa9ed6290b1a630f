/* A tree in a mount (and pid) namespace of its own whose tmpfs mounts are covered by others
 * (zdtm's tempfs_overmounted shapes): under DIR (the state file's directory + "/mntover"):
 *   a      a tmpfs with a1.txt, covered by a second tmpfs mounted on a (a2.txt)
 *   c/d    a tmpfs with d.txt, then c a tmpfs over the directory above it (c.txt, an empty d),
 *          then c/d a tmpfs again on that (e.txt)
 *   m      a tmpfs (top.txt, sub/s.txt, sub/c) bound whole at mb, then m/sub bound over m, then
 *          mb moved (MS_MOVE) to m/c: a mount listed before its parent, bound from one covered
 *          (zdtm's tempfs_overmounted01)
 * The init (pid 1 there, a fresh exec inside the namespace) makes the tree private, mounts a proc
 * of its pid namespace, then the mounts above, and the outside parent says "ready pid=<init>".
 *
 *   mntover STATEFILE
 *
 * SIGUSR1 (to the init): "check ok" when it is pid 1, two mounts are at a, c/d and m and one at c
 * and m/c, the top ones hold a2.txt, c.txt and e.txt, m shows sub (s.txt) and m/c all of the
 * tmpfs (top.txt, sub/s.txt), and in a copy of the namespace (a child of the init
 * that unshares it, private throughout) with the covering mounts unmounted, a1.txt and d.txt
 * are there with their contents. */
#include "workload.h"
#include "mntdir.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

static int tmpfs_at(const char *rel) {
	char p[4096];
	path_of(p, rel);
	mkdir(p, 0755);
	return mount("tmpfs", p, "tmpfs", 0, "size=256k");
}

static int unmount(const char *rel) {
	char p[4096];
	path_of(p, rel);
	return umount2(p, MNT_DETACH);
}

/* in a private copy of the namespace: what the covering mounts hide (exit status 0: all there) */
static int hidden_files(void) {
	if (unshare(CLONE_NEWNS) || mount(0, "/", 0, MS_REC | MS_PRIVATE, 0)) return 1;
	if (unmount("a") || !holds("a/a1.txt", "one\n") || holds("a/a2.txt", "two\n")) return 2;
	if (unmount("c/d") || unmount("c") || !holds("c/d/d.txt", "dee\n")) return 3;
	return 0;
}

static const char *check(void) {
	if (getpid() != 1) return "not pid 1";
	if (mounts_at("a") != 2 || mounts_at("c") != 1 || mounts_at("c/d") != 2) return "mounts counted";
	if (!holds("a/a2.txt", "two\n") || holds("a/a1.txt", "one\n")) return "a: top";
	if (!holds("c/c.txt", "cee\n") || !holds("c/d/e.txt", "eee\n") || holds("c/d/d.txt", "dee\n")) return "c: top";
	if (mounts_at("m") != 2 || mounts_at("m/c") != 1 || mounts_at("mb") != 0) return "m mounts counted";
	if (!holds("m/s.txt", "sub\n") || holds("m/top.txt", "top\n") || !holds("m/c/top.txt", "top\n") || !holds("m/c/sub/s.txt", "sub\n")) return "m: files";
	pid_t k = fork();
	if (k == 0) _exit(hidden_files());
	int st = -1;
	if (k < 0 || waitpid(k, &st, 0) != k) return "fork";
	static char why[64];
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(why, sizeof why, "hidden files (step %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return why;
	}
	return 0;
}

static int init_main(int ready) {
	if (wl_init_private_proc())
		return 1;
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	mkdir(dir, 0755);
	char q[4096];
	path_of(q, "c");
	mkdir(q, 0755);
	if (tmpfs_at("a") || put("a/a1.txt", "one\n", 0644) || tmpfs_at("a") || put("a/a2.txt", "two\n", 0644)) {
		wl_say("error mounts on a: %s", strerror(errno));
		return 1;
	}
	if (tmpfs_at("c/d") || put("c/d/d.txt", "dee\n", 0644) || tmpfs_at("c") || put("c/c.txt", "cee\n", 0644) || tmpfs_at("c/d") || put("c/d/e.txt", "eee\n", 0644)) {
		wl_say("error mounts on c: %s", strerror(errno));
		return 1;
	}
	char mp[4096], mb[4096], sub[4096], subc[4096], c[4096];
	path_of(mp, "m"), path_of(mb, "mb"), path_of(sub, "m/sub"), path_of(subc, "m/sub/c"), path_of(c, "m/c");
	mkdir(mb, 0755);
	if (tmpfs_at("m") || put("m/top.txt", "top\n", 0644) || mkdir(sub, 0755) || put("m/sub/s.txt", "sub\n", 0644) || mkdir(subc, 0755)) {
		wl_say("error tmpfs m: %s", strerror(errno));
		return 1;
	}
	if (mount(mp, mb, 0, MS_BIND, 0) || mount(sub, mp, 0, MS_BIND, 0) || mount(mb, c, 0, MS_MOVE, 0)) {
		wl_say("error mounts on m: %s", strerror(errno));
		return 1;
	}
	return wl_serve(ready, check);
}

int main(int argc, char **argv) {
	return mnt_main(argc, argv, "mntover", init_main);
}
