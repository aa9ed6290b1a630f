/* A tree in a mount namespace (and pid namespace) of its own whose child made another below it
 * (unshare(CLONE_NEWNS) after fork, as a sandboxing helper does): crtools issue 17, nested mount
 * namespaces. The init (pid 1 of the new pid namespace, a fresh exec inside the namespace) makes
 * the tree private, mounts a proc of its pid namespace on /proc, unmounts /dev/shm and, under DIR (the state file's
 * directory + "/mntsub"):
 *   t     a tmpfs with a.txt and sub/b.txt
 * then forks a child that unshares a mount namespace of its own (a copy of the init's) and in it:
 *   n     a tmpfs of its own with n.txt (the init's namespace has nothing at n)
 *   nb    a bind mount of t/sub (its copy of t: the same file system as the init's t)
 * the child holds n/n.txt open (O_RDWR, offset 1) and t/a.txt (O_RDONLY, through its copy of
 * t), works in n; the init holds t/a.txt (offset 2). Then the outside parent says "ready pid=<init
 * as crtools sees it>" and exits.
 *
 *   mntsub STATEFILE
 *
 * SIGUSR1 (to the init): "check ok" when the init is still pid 1 with the child alive, in
 * another mount namespace than the child's, with t mounted and nothing at n or nb, its file at
 * offset 2; and the child (asked through a pipe, answering through another) finds its own
 * mounts (n a tmpfs, nb a bind of t/sub on t's device), its files at their offsets naming
 * n/n.txt and t/a.txt, its working directory n, and writes nb/shared.txt, which the init then
 * reads as t/sub/shared.txt (one file system across the two namespaces) and removes. */
#include "workload.h"
#include "mntdir.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

/* device and root of the last mount at DIR/REL (0: none) */
static int mount_of(const char *rel, unsigned *maj, unsigned *min, char *root, char *fs) {
	char p[4096], line[8192], mp[4096], r[4096];
	int found = 0;
	path_of(p, rel);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned a, b;
		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &a, &b, r, mp) != 4 || strcmp(mp, p)) continue;
		found = 1;
		*maj = a, *min = b;
		strcpy(root, r);
		char *o = strstr(line, " - ");
		if (o) sscanf(o + 3, "%31s", fs);
	}
	fclose(f);
	return found;
}

static int same_file(int fd, const char *rel) {
	char p[4096];
	struct stat a, b;
	path_of(p, rel);
	return !stat(p, &a) && !fstat(fd, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static const char *kid_check(int nfd, int afd) {
	unsigned tmaj, tmin, nmaj, nmin, bmaj, bmin;
	char troot[4096], nroot[4096], broot[4096], tfs[32] = "", nfs[32] = "", bfs[32] = "", p[4096], cwd[4096];
	char self[128], init[128];
	ssize_t k = readlink("/proc/self/ns/mnt", self, sizeof self - 1), i = readlink("/proc/1/ns/mnt", init, sizeof init - 1);
	if (k <= 0 || i <= 0) return "kid: ns links";
	self[k] = 0, init[i] = 0;
	if (!strcmp(self, init)) return "kid: in the init's mount namespace";
	if (!mount_of("t", &tmaj, &tmin, troot, tfs) || strcmp(tfs, "tmpfs") || strcmp(troot, "/")) return "kid: t mount";
	if (!mount_of("n", &nmaj, &nmin, nroot, nfs) || strcmp(nfs, "tmpfs") || strcmp(nroot, "/") || (nmaj == tmaj && nmin == tmin)) return "kid: n mount";
	if (!mount_of("nb", &bmaj, &bmin, broot, bfs) || strcmp(bfs, "tmpfs") || strcmp(broot, "/sub") || bmaj != tmaj || bmin != tmin) return "kid: nb mount";
	if (mounts_at("n") != 1 || mounts_at("nb") != 1) return "kid: mounts counted";
	if (!holds("n/n.txt", "nu\n") || !holds("nb/b.txt", "beta\n") || !holds("t/a.txt", "alpha\n")) return "kid: contents";
	if (!same_file(nfd, "n/n.txt") || lseek(nfd, 0, SEEK_CUR) != 1) return "kid: n.txt descriptor";
	if (!same_file(afd, "t/a.txt") || lseek(afd, 0, SEEK_CUR) != 0) return "kid: a.txt descriptor";
	path_of(p, "n");
	if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, p)) return "kid: cwd";
	if (put("nb/shared.txt", "sigma\n", 0644)) return "kid: nb/shared.txt";
	return 0;
}

static void kid_main(int ask, int answer) {
	if (unshare(CLONE_NEWNS) || mnt("tmpfs", "n", "tmpfs", MS_NOSUID, "size=1m,mode=755") || mnt("t/sub", "nb", 0, MS_BIND, 0)) {
		dprintf(answer, "error kid mounts: %s\n", strerror(errno));
		_exit(1);
	}
	char q[4096];
	if (put("n/n.txt", "nu\n", 0640)) _exit(1);
	path_of(q, "n/n.txt");
	int nfd = open(q, O_RDWR);
	path_of(q, "t/a.txt");
	int afd = open(q, O_RDONLY);
	path_of(q, "n");
	if (nfd < 0 || afd < 0 || lseek(nfd, 1, SEEK_SET) != 1 || chdir(q)) _exit(1);
	if (write(answer, "k", 1) != 1) _exit(1);
	for (;;) {
		char c;
		if (read(ask, &c, 1) != 1) _exit(0);
		const char *bad = kid_check(nfd, afd);
		dprintf(answer, "%s\n", bad ? bad : "ok");
	}
}

static int init_main(int ready) {
	if (wl_init_tree_ns())
		return 1;
	char q[4096];
	mkdir(dir, 0755);
	const char *dirs[] = { "t", "n", "nb" };
	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		path_of(q, dirs[i]);
		mkdir(q, 0755);
	}
	if (mnt("tmpfs", "t", "tmpfs", 0, "size=1m,mode=755")) {
		wl_say("error mount t: %s", strerror(errno));
		return 1;
	}
	path_of(q, "t/sub");
	mkdir(q, 0755);
	if (put("t/a.txt", "alpha\n", 0644) || put("t/sub/b.txt", "beta\n", 0644)) return 1;
	path_of(q, "t/a.txt");
	int fd = open(q, O_RDONLY);
	if (fd < 0 || lseek(fd, 2, SEEK_SET) != 2) return 1;
	int ask[2], answer[2];
	if (pipe(ask) || pipe(answer)) return 1;
	pid_t kid = fork();
	if (kid == 0) {
		close(ready), close(ask[1]), close(answer[0]);
		kid_main(ask[0], answer[1]);
	}
	close(ask[0]), close(answer[1]);
	char c[256] = "";
	if (read(answer[0], c, sizeof c - 1) != 1 || c[0] != 'k') {
		fprintf(stderr, "mntsub: child setup: %s\n", c);
		return 1;
	}
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	for (;;) {
		wl_wait_check();
		char line[256] = "";
		const char *bad = 0;
		if (getpid() != 1) bad = "not pid 1";
		else if (waitpid(kid, 0, WNOHANG) != 0) bad = "child gone";
		else if (mounts_at("t") != 1 || mounts_at("n") != 0 || mounts_at("nb") != 0) bad = "init: mounts";
		else if (!same_file(fd, "t/a.txt") || lseek(fd, 0, SEEK_CUR) != 2) bad = "init: a.txt descriptor";
		else if (write(ask[1], "?", 1) != 1) bad = "ask";
		else {
			ssize_t n = 0, r;
			while (n < (ssize_t)sizeof line - 1 && (r = read(answer[0], line + n, 1)) == 1 && line[n] != '\n') n++;
			line[n] = 0;
			if (strcmp(line, "ok")) bad = line;
			else if (!holds("t/sub/shared.txt", "sigma\n")) bad = "init: t/sub/shared.txt (written by the child through nb)";
			path_of(q, "t/sub/shared.txt");
			unlink(q);
		}
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	return mnt_main(argc, argv, "mntsub", init_main);
}
