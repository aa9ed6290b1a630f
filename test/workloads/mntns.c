/* A tree in a mount namespace (and pid namespace) of its own, as `unshare --mount --pid --fork
 * --mount-proc` and container runtimes make it: the workload unshares both, its init (pid 1
 * there, a fresh exec of the program inside the namespace) makes the tree private, mounts a
 * proc of its pid namespace on /proc, opens its stdio on /dev/null again, and under DIR (the state file's directory + "/mntns"):
 *   t     a tmpfs (nosuid, size=4m) with a.txt, sub/b.txt and an empty directory
 *   bind  a bind mount of t/sub
 *   t/cover  a directory of t holding under.txt, covered by another tmpfs: under.txt is read
 *           through a bind of t alone at DIR/peek (made and removed in each check)
 *   s     a shared tmpfs with c.txt, s2 its peer (bind), sl its slave (bind + MS_SLAVE)
 *   s/keep  a tmpfs mounted on s after s2 and sl: the kernel copies it to s2/keep (a peer)
 *           and sl/keep (a slave), one mount each, one file system
 * holds a.txt open (O_RDWR, offset 3) and t/gone.txt (written, then unlinked: a file only the
 * tree's tmpfs had, made again there by the restore), works in t/sub, forks a child, then its outside parent
 * says "ready pid=<init as crtools sees it>" and exits.
 *
 *   mntns STATEFILE
 *
 * SIGUSR1 (to the init): "check ok" when it is still pid 1 with its child alive, its
 * /proc is its own pid namespace's, the mounts under DIR have their file systems, roots and
 * propagation (s and s2 peers, sl their slave, t, bind and "/" private), the
 * files hold what was written, the descriptor names a.txt at offset 3, gone.txt is held unlinked
 * (nlink 0, its contents, mode 0604, named "t/gone.txt (deleted)", not in t), the working directory is
 * t/sub, and a mount made on s shows on s2 and sl (and goes away again). */
#include "workload.h"
#include "mntdir.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

static struct wl_mount at(const char *rel) {
	char p[4096];
	path_of(p, rel);
	return wl_mount_in("/proc/self/mountinfo", p);
}

/* the unlinked file on t: nlink 0, its contents, mode, name, and its name free again */
static const char *check_gone(int fd) {
	char p[4096], link[4096], want[4200], proc[64], buf[64];
	struct stat st;
	if (fstat(fd, &st) || st.st_nlink != 0 || (st.st_mode & 07777) != 0604) return "gone.txt: nlink or mode";
	if (pread(fd, buf, sizeof buf, 0) != 6 || memcmp(buf, "delta\n", 6)) return "gone.txt: contents";
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, link, sizeof link - 1);
	if (n <= 0) return "gone.txt: readlink";
	link[n] = 0;
	path_of(p, "t/gone.txt");
	snprintf(want, sizeof want, "%s (deleted)", p);
	if (strcmp(link, want)) return "gone.txt: its name";
	if (stat(p, &st) == 0) return "gone.txt: linked again";
	return 0;
}

static const char *check(int fd, int gone, pid_t kid) {
	static char why[256];
	if (getpid() != 1) return "not pid 1";
	if (waitpid(kid, 0, WNOHANG) != 0 || kill(kid, 0) != 0) return "child gone";
	char self[64];
	ssize_t n = readlink("/proc/self", self, sizeof self - 1);
	if (n <= 0) return "no /proc/self";
	self[n] = 0;
	if (strcmp(self, "1")) return "/proc is not this pid namespace's";
	struct wl_mount rt = wl_mount_in("/proc/self/mountinfo", "/"), pr = wl_mount_in("/proc/self/mountinfo", "/proc");
	if (!rt.found || rt.master || rt.shared) return "/ propagation";
	if (!pr.found || strcmp(pr.fs, "proc") || pr.shared || pr.master) return "/proc mount";
	struct wl_mount t = at("t"), b = at("bind"), s = at("s"), s2 = at("s2"), sl = at("sl");
	if (!t.found || strcmp(t.fs, "tmpfs") || strcmp(t.root, "/") || t.shared || t.master) return "t mount";
	if (!b.found || strcmp(b.fs, "tmpfs") || strcmp(b.root, "/sub") || b.maj != t.maj || b.min != t.min || b.shared || b.master) return "bind mount";
	if (!s.found || strcmp(s.fs, "tmpfs") || !s.shared || s.master) return "s mount";
	if (!s2.found || s2.shared != s.shared || s2.maj != s.maj || s2.min != s.min) return "s2 mount";
	if (!sl.found || sl.master != s.shared || sl.shared || sl.maj != s.maj) return "sl mount";
	/* the copies propagation made of s/keep: one mount at each place, one file system */
	struct wl_mount k = at("s/keep"), k2 = at("s2/keep"), kl = at("sl/keep");
	if (mounts_at("s/keep") != 1 || mounts_at("s2/keep") != 1 || mounts_at("sl/keep") != 1) return "keep mounts counted";
	if (!k.found || strcmp(k.fs, "tmpfs") || !k.shared || k.shared == s.shared || k.master) return "s/keep mount";
	if (k2.shared != k.shared || k2.maj != k.maj || k2.min != k.min) return "s2/keep mount";
	if (kl.master != k.shared || kl.shared || kl.maj != k.maj || kl.min != k.min) return "sl/keep mount";
	if (!holds("sl/keep/k.txt", "kappa\n")) return "keep contents";
	/* what the mount on t/cover hides of t: seen through a bind of t alone (no submounts) */
	if (mounts_at("t/cover") != 1 || (at("t/cover").maj == t.maj && at("t/cover").min == t.min)) return "t/cover mount";
	if (mnt("t", "peek", 0, MS_BIND, 0)) return "bind of t";
	int under = holds("peek/cover/under.txt", "hidden\n");
	char pk[4096];
	path_of(pk, "peek");
	if (umount2(pk, 0)) return "umount peek";
	if (!under) return "t/cover/under.txt";
	if (!holds("t/a.txt", "alpha\n") || !holds("t/sub/b.txt", "beta beta\n") || !holds("bind/b.txt", "beta beta\n") || !holds("s2/c.txt", "gamma\n") || !holds("sl/c.txt", "gamma\n"))
		return "file contents";
	char p[4096];
	struct stat st, fst;
	path_of(p, "t/a.txt");
	if (stat(p, &st) || fstat(fd, &fst) || st.st_dev != fst.st_dev || st.st_ino != fst.st_ino) return "fd file";
	if (lseek(fd, 0, SEEK_CUR) != 3) return "fd offset";
	if ((st.st_mode & 07777) != 0640) return "a.txt mode";
	const char *g = check_gone(gone);
	if (g) return g;
	path_of(p, "t/empty");
	if (stat(p, &st) || !S_ISDIR(st.st_mode)) return "t/empty";
	char cwd[4096];
	path_of(p, "t/sub");
	if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, p)) return "cwd";
	/* propagation at work: a mount on s shows on its peer and its slave */
	if (mnt("tmpfs", "s/p", "tmpfs", 0, "size=64k")) {
		snprintf(why, sizeof why, "mount on s: %s", strerror(errno));
		return why;
	}
	int ok = at("s2/p").found && at("sl/p").found;
	if (umount2(strcat(strcpy(p, dir), "/s/p"), 0)) return "umount s/p";
	if (!ok) return "propagation from s";
	if (at("s2/p").found || at("sl/p").found) return "umount propagation";
	return 0;
}

/* The namespace's init, a fresh exec inside the namespace (so that no file of the tree,
 * its program included, is reached through a mount of the host's namespace, as CRIU asks). */
static int init_main(int ready) {
	setsid();
	wl_handle_usr1();
	/* the tree's own mounts: nothing of them reaches the host */
	if (mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) {
		wl_say("error mount / or /proc: %s", strerror(errno));
		return 1;
	}
	/* stdio through this namespace's mounts (not the host's, as the starter opened them) */
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	char q[4096];
	mkdir(dir, 0755);
	const char *dirs[] = { "t", "bind", "s", "s2", "sl", "peek" };
	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		path_of(q, dirs[i]);
		mkdir(q, 0755);
	}
	if (mnt("tmpfs", "t", "tmpfs", MS_NOSUID, "size=4m,mode=755")) {
		wl_say("error mount t: %s", strerror(errno));
		return 1;
	}
	path_of(q, "t/sub");
	mkdir(q, 0750);
	path_of(q, "t/empty");
	mkdir(q, 0700);
	if (put("t/a.txt", "alpha\n", 0640) || put("t/sub/b.txt", "beta beta\n", 0600)) return 1;
	path_of(q, "t/a.txt");
	chmod(q, 0640);
	if (mnt("t/sub", "bind", 0, MS_BIND, 0) || mnt("tmpfs", "s", "tmpfs", 0, "size=1m") || mnt(0, "s", 0, MS_SHARED, 0)) {
		wl_say("error mount bind/s: %s", strerror(errno));
		return 1;
	}
	path_of(q, "s/p");
	mkdir(q, 0755);
	if (put("s/c.txt", "gamma\n", 0644) || mnt("s", "s2", 0, MS_BIND, 0) || mnt("s", "sl", 0, MS_BIND, 0) || mnt(0, "sl", 0, MS_SLAVE, 0)) {
		wl_say("error mount s2/sl: %s", strerror(errno));
		return 1;
	}
	path_of(q, "t/cover");
	mkdir(q, 0755);
	if (put("t/cover/under.txt", "hidden\n", 0644) || mnt("tmpfs", "t/cover", "tmpfs", 0, "size=64k")) {
		wl_say("error mount t/cover: %s", strerror(errno));
		return 1;
	}
	path_of(q, "s/keep");
	mkdir(q, 0755);
	if (mnt("tmpfs", "s/keep", "tmpfs", 0, "size=64k") || put("s/keep/k.txt", "kappa\n", 0644)) {
		wl_say("error mount s/keep: %s", strerror(errno));
		return 1;
	}
	path_of(q, "t/a.txt");
	int fd = open(q, O_RDWR);
	if (fd < 0 || lseek(fd, 3, SEEK_SET) != 3) return 1;
	if (put("t/gone.txt", "delta\n", 0604)) return 1;
	path_of(q, "t/gone.txt");
	chmod(q, 0604);
	int gone = open(q, O_RDONLY);
	if (gone < 0 || unlink(q)) return 1;
	path_of(q, "t/sub");
	if (chdir(q)) return 1;
	pid_t kid = fork();
	if (kid == 0) {
		close(ready);
		for (;;) pause();
	}
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	for (;;) {
		wl_wait_check();
		const char *bad = check(fd, gone, kid);
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	return mnt_main(argc, argv, "mntns", init_main);
}
