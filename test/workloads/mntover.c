/* A tree in a mount (and pid) namespace of its own whose tmpfs mounts are covered by others
 * (zdtm's tempfs_overmounted shapes): under DIR (the state file's directory + "/mntover"):
 *   a      a tmpfs with a1.txt, covered by a second tmpfs mounted on a (a2.txt)
 *   c/d    a tmpfs with d.txt, then c a tmpfs over the directory above it (c.txt, an empty d),
 *          then c/d a tmpfs again on that (e.txt)
 * The init (pid 1 there, a fresh exec inside the namespace) makes the tree private, mounts a proc
 * of its pid namespace, then the mounts above, and the outside parent says "ready pid=<init>".
 *
 *   mntover STATEFILE
 *
 * SIGUSR1 (to the init): "check ok" when it is pid 1, two mounts are at a and at c/d and one at c,
 * the top ones hold a2.txt, c.txt and e.txt, and in a copy of the namespace (a child of the init
 * that unshares it, private throughout) with the covering mounts unmounted, a1.txt and d.txt
 * are there with their contents. */
#include "workload.h"
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

static char dir[3072];

static void path_of(char *out, const char *rel) {
	snprintf(out, 4096, "%s/%s", dir, rel);
}

static int put(const char *rel, const char *text) {
	char p[4096];
	path_of(p, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int holds(const char *rel, const char *text) {
	char p[4096], buf[256];
	path_of(p, rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) return 0;
	buf[n] = 0;
	return strcmp(buf, text) == 0;
}

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

/* How many mounts have mount point DIR/REL. */
static int mounts_at(const char *rel) {
	char p[4096], line[8192], mp[4096];
	int n = 0;
	path_of(p, rel);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%*d %*d %*u:%*u %*s %4095s", mp) == 1 && !strcmp(mp, p)) n++;
	fclose(f);
	return n;
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
	setsid();
	wl_handle_usr1();
	if (mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) {
		wl_say("error mount / or /proc: %s", strerror(errno));
		return 1;
	}
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	mkdir(dir, 0755);
	char q[4096];
	path_of(q, "c");
	mkdir(q, 0755);
	if (tmpfs_at("a") || put("a/a1.txt", "one\n") || tmpfs_at("a") || put("a/a2.txt", "two\n")) {
		wl_say("error mounts on a: %s", strerror(errno));
		return 1;
	}
	if (tmpfs_at("c/d") || put("c/d/d.txt", "dee\n") || tmpfs_at("c") || put("c/c.txt", "cee\n") || tmpfs_at("c/d") || put("c/d/e.txt", "eee\n")) {
		wl_say("error mounts on c: %s", strerror(errno));
		return 1;
	}
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	for (;;) {
		wl_wait_check();
		const char *bad = check();
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *state = argv[argc - 1];
	snprintf(dir, sizeof dir, "%s", state);
	char *slash = strrchr(dir, '/');
	if (!slash) return 2;
	strcpy(slash, "/mntover");
	if (argc == 4 && strcmp(argv[1], "--init") == 0) {
		wl_state = state;
		return init_main(atoi(argv[2]));
	}
	wl_detach(state);
	if (unshare(CLONE_NEWNS | CLONE_NEWPID)) {
		wl_say("error unshare");
		return 1;
	}
	int p[2];
	if (pipe(p)) return 1;
	pid_t init = fork();
	if (init < 0) return 1;
	if (init == 0) {
		char fd[16], exe[4096];
		close(p[0]);
		snprintf(fd, sizeof fd, "%d", p[1]);
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n <= 0) _exit(127);
		exe[n] = 0;
		execl(exe, argv[0], "--init", fd, state, (char *)0);
		_exit(127);
	}
	return wl_init_ready(p, init);
}
