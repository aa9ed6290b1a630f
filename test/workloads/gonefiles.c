/* gonefiles MODE DIR STATEFILE: files of the task whose names, or whose holders, are gone.
 *   watch   DIR/watched (6 bytes) held open read-write at fd 3, an inotify instance (fd 4) with
 *           a watch (number 3: two added and removed before) on it for IN_MODIFY and
 *           IN_DELETE_SELF, then the file unlinked (nlink 0): the watch lives on the inode the
 *           task holds (zdtm inotify00). On each check a byte written through fd 3 must come as
 *           IN_MODIFY under watch 3, and nothing else; the file still unlinked, named
 *           "DIR/watched (deleted)", with every byte written, and DIR empty.
 *   cwd     the working directory is /proc/A of a child A that was killed and reaped (zdtm
 *           unhashed_proc); a child B forked after keeps it too. On each check getcwd() and
 *           stat(".") fail as they did at the start (ENOENT, and what stat gave), and
 *           /proc/self/cwd and /proc/B/cwd read as they did ("/proc/A (deleted)").
 *   lremap  DIR/sub/a (5 bytes) held open read-write at fd 3, DIR/b a second name of it, then
 *           DIR/sub/a unlinked and DIR/sub removed (for --link-remap: nothing left where the name
 *           was). On each check fd 3 is still DIR/b's inode ("DIR/sub/a (deleted)", nlink 1), a
 *           byte written through it shows in DIR/b, DIR holds b alone (no link_remap.N, no sub).
 * The verdict is "check ok MODE" or "check bad MODE what". */
#include "workload.h"
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sys/inotify.h>

static char dir[2048];

/* the names in DIR but "." and "..", joined with commas (the state file's own names left out) */
static void names_in(char *out, size_t len) {
	DIR *d = opendir(dir);
	out[0] = 0;
	if (!d) return;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || strstr(e->d_name, ".state")) continue;
		if (out[0]) strncat(out, ",", len - strlen(out) - 1);
		strncat(out, e->d_name, len - strlen(out) - 1);
	}
	closedir(d);
}

static int same_link(const char *link, const char *want) {
	char got[4200];
	ssize_t n = readlink(link, got, sizeof got - 1);
	if (n < 0) return 0;
	got[n] = 0;
	return !strcmp(got, want);
}

static const char *check_watch(int n) {
	static char why[1100];
	char want[4200], names[1024];
	if (write(3, "x", 1) != 1) return "write";
	struct stat st;
	if (fstat(3, &st) || st.st_nlink != 0 || st.st_size != 7 + n) {
		snprintf(why, sizeof why, "file nlink=%ld size=%ld", (long)st.st_nlink, (long)st.st_size);
		return why;
	}
	snprintf(want, sizeof want, "%s/watched (deleted)", dir);
	if (!same_link("/proc/self/fd/3", want)) return "name";
	names_in(names, sizeof names);
	if (names[0]) {
		snprintf(why, sizeof why, "left=%s", names);
		return why;
	}
	int modified = 0, other = 0;
	unsigned masks = 0;
	char buf[4096];
	for (int tries = 0; tries < 50 && !modified; tries++) {
		struct pollfd p = { 4, POLLIN, 0 };
		poll(&p, 1, 20);
		ssize_t len = read(4, buf, sizeof buf);
		for (ssize_t o = 0; len > 0 && o < len;) {
			struct inotify_event *e = (struct inotify_event *)(buf + o);
			if (e->wd == 3 && e->mask == IN_MODIFY) modified = 1;
			else {
				other++;
				masks |= e->mask;
			}
			o += sizeof *e + e->len;
		}
	}
	if (!modified || other) {
		snprintf(why, sizeof why, "events modified=%d other=%d masks=%#x", modified, other, masks);
		return why;
	}
	return 0;
}

static int child_b = -1, stat_errno, getcwd_errno;
static char cwd_link[4200];

static const char *check_cwd(void) {
	static char why[256];
	char buf[4200], link[64];
	struct stat st;
	errno = 0;
	if (getcwd(buf, sizeof buf) || errno != getcwd_errno) return "getcwd";
	errno = 0;
	if (stat(".", &st) == 0 ? stat_errno != 0 : errno != stat_errno) {
		snprintf(why, sizeof why, "stat errno=%d was %d", errno, stat_errno);
		return why;
	}
	if (!same_link("/proc/self/cwd", cwd_link)) return "own cwd";
	snprintf(link, sizeof link, "/proc/%d/cwd", child_b);
	if (!same_link(link, cwd_link)) return "child's cwd";
	return 0;
}

static const char *check_lremap(int n) {
	static char why[1100];
	char b[4200], want[4200], names[1024], got[16];
	snprintf(b, sizeof b, "%s/b", dir);
	struct stat st, bst;
	if (fstat(3, &st) || stat(b, &bst) || st.st_ino != bst.st_ino || st.st_dev != bst.st_dev || st.st_nlink != 1) return "inode";
	snprintf(want, sizeof want, "%s/sub/a (deleted)", dir);
	if (!same_link("/proc/self/fd/3", want)) return "name";
	if (pwrite(3, "J", 1, n % 5) != 1) return "write";
	int fd = open(b, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : pread(fd, got, 5, 0);
	if (fd >= 0) close(fd);
	if (r != 5 || got[n % 5] != 'J') return "not shared";
	names_in(names, sizeof names);
	if (strcmp(names, "b")) {
		snprintf(why, sizeof why, "left=%s", names);
		return why;
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1];
	char path[4200];
	snprintf(dir, sizeof dir, "%s", argv[2]);
	wl_detach(argv[3]);
	if (!strcmp(mode, "watch")) {
		snprintf(path, sizeof path, "%s/watched", dir);
		int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
		if (f != 3 || write(f, "hello\n", 6) != 6) { wl_say("error create %d", errno); return 1; }
		int in = inotify_init1(IN_NONBLOCK);
		if (in != 4) { wl_say("error inotify %d", errno); return 1; }
		for (int k = 0; k < 2; k++) inotify_rm_watch(in, inotify_add_watch(in, dir, IN_CREATE));
		if (inotify_add_watch(in, path, IN_MODIFY | IN_DELETE_SELF) != 3 || unlink(path)) { wl_say("error watch %d", errno); return 1; }
		char buf[4096];
		while (read(in, buf, sizeof buf) > 0) ; /* the IN_IGNORED of the watches removed */
	} else if (!strcmp(mode, "cwd")) {
		pid_t a = fork();
		if (a == 0) for (;;) pause();
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/%d", (int)a);
		if (a < 0 || chdir(proc)) { wl_say("error chdir %d", errno); return 1; }
		kill(a, SIGKILL);
		waitpid(a, 0, 0);
		child_b = fork();
		if (child_b == 0) for (;;) pause();
		struct stat st;
		char buf[4200];
		errno = 0;
		stat_errno = stat(".", &st) ? errno : 0;
		errno = 0;
		getcwd_errno = getcwd(buf, sizeof buf) ? 0 : errno;
		ssize_t n = readlink("/proc/self/cwd", cwd_link, sizeof cwd_link - 1);
		if (child_b < 0 || n < 0 || getcwd_errno != ENOENT) { wl_say("error cwd %d", errno); return 1; }
		cwd_link[n] = 0;
		wl_handle_usr1();
		wl_say("ready pid=%d b=%d", (int)getpid(), child_b);
		for (;;) {
			wl_wait_check();
			const char *bad = check_cwd();
			if (bad) wl_say("check bad cwd %s", bad);
			else wl_say("check ok cwd");
		}
	} else if (!strcmp(mode, "lremap")) {
		char sub[4096], b[4200];
		snprintf(sub, sizeof sub, "%s/sub", dir);
		snprintf(path, sizeof path, "%s/a", sub);
		snprintf(b, sizeof b, "%s/b", dir);
		int f = mkdir(sub, 0700) ? -1 : open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
		if (f != 3 || write(f, "hello", 5) != 5 || link(path, b) || unlink(path) || rmdir(sub)) { wl_say("error setup %d", errno); return 1; }
	} else {
		return 2;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (int n = 0;; n++) {
		wl_wait_check();
		const char *bad = !strcmp(mode, "watch") ? check_watch(n) : check_lremap(n);
		if (bad) wl_say("check bad %s %s", mode, bad);
		else wl_say("check ok %s", mode);
	}
}
