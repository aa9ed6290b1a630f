/* Files and mounts under DIR, the directory a mount namespace workload (mntns, mntover) works
 * in (the state file's directory + "/NAME"), and the main they share. After workload.h. */
#ifndef CRTOOLS_MNTDIR_H
#define CRTOOLS_MNTDIR_H
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static char dir[3072];

static void path_of(char *out, const char *rel) {
	snprintf(out, 4096, "%s/%s", dir, rel);
}

static inline int put(const char *rel, const char *text, int perm) {
	char p[4096];
	path_of(p, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, perm);
	if (fd < 0) return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static inline int holds(const char *rel, const char *text) {
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

/* mount(2) at DIR/REL; a source that is neither absolute nor a file system's name (fs NULL: a
 * bind) is DIR/SRC too. */
static inline int mnt(const char *src, const char *rel, const char *fs, unsigned long flags, const char *data) {
	char p[4096], s[4096];
	path_of(p, rel);
	if (src && src[0] != '/' && !fs) {
		path_of(s, src);
		src = s;
	}
	return mount(src, p, fs, flags, data);
}

/* An init of its own pid and mount namespaces: a session leader answering SIGUSR1, its mounts
 * private and /proc its pid namespace's (0; 1 said "error"). */
static inline int wl_init_private_proc(void) {
	setsid();
	wl_handle_usr1();
	if (mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) {
		wl_say("error mount / or /proc: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* The init of a test tree with a mount namespace of its own: wl_init_private_proc, the host's
 * /dev/shm (a tmpfs a dump would carry whole, may be large: not the tree's) unmounted, stdio on
 * /dev/null. 0, or 1 (said in the state file). */
static inline int wl_init_tree_ns(void) {
	if (wl_init_private_proc())
		return 1;
	umount2("/dev/shm", MNT_DETACH);
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
	if (nul > 2) close(nul);
	return 0;
}

/* How many mounts have mount point DIR/REL. */
static inline int mounts_at(const char *rel) {
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

/* Outside: unshare namespaces FLAGS (CLONE_NEWPID among them), fork their init and exec this
 * program again in it as `ARGV0 --init FD STATE` (by its path name, looked up in the new mount
 * namespace: /proc/self/exe would be the host's mount), FD the pipe it writes 'k' on once set up;
 * then say ready (wl_init_ready). */
static inline int wl_exec_ns_init(int flags, const char *argv0, const char *state) {
	if (unshare(flags)) {
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
		execl(exe, argv0, "--init", fd, state, (char *)0);
		_exit(127);
	}
	return wl_init_ready(p, init);
}

/* main of mount namespace workload NAME: as `NAME --init FD STATE` it is the init of its
 * namespaces (init(FD)); as `NAME STATE` it starts one in new mount and pid namespaces. */
static inline int mnt_main(int argc, char **argv, const char *name, int (*init)(int ready)) {
	if (argc < 2) return 2;
	const char *state = argv[argc - 1];
	snprintf(dir, sizeof dir, "%s", state);
	char *slash = strrchr(dir, '/');
	if (!slash) return 2;
	snprintf(slash, sizeof dir - (size_t)(slash - dir), "/%s", name);
	if (argc == 4 && strcmp(argv[1], "--init") == 0) {
		wl_state = state;
		return init(atoi(argv[2]));
	}
	wl_detach(state);
	return wl_exec_ns_init(CLONE_NEWNS | CLONE_NEWPID, argv[0], state);
}
#endif
