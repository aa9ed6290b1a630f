/* fsmisc MODE DIR STATEFILE: one kind of odd file state per MODE, checked on SIGUSR1.
 *   cwd     the working directory DIR/gone was removed (rmdir) while the task is in it
 *   udir    DIR/gone-open is held open (O_DIRECTORY) after rmdir
 *   udir2   DIR/gone-parent/gone-open is held open (O_DIRECTORY) after rmdir of both: after a
 *           restore DIR/gone-parent is gone again
 *   chroot  a child chroot()s into DIR/root (holding the file "inside") without a chdir(): its
 *           working directory stays DIR, outside its root; on each check the parent asks it
 *           (through a pipe) whether "/inside" is the file and "." still DIR
 *   proc    /proc/self/status held open: it still reads this task's own status
 *   symlink DIR/link, a dangling symbolic link to "nowhere", held by O_PATH|O_NOFOLLOW: still
 *           the link itself (fstat S_IFLNK, readlinkat gives its target)
 *   usymlink DIR/ulink, a symbolic link to "gone/target" owned by 1234:5678 with its times set
 *           (atime 1000000000.123456, mtime 1100000000.654321), held by O_PATH|O_NOFOLLOW and
 *           unlinked: still that link (nlink 0, owner, mtime, target), named "... (deleted)",
 *           and DIR/ulink free
 *   epoll   an eventfd added to an epoll set at one fd, dup'ed, the first fd closed
 *   lease   a read lease (F_SETLEASE F_RDLCK) on DIR/leased; a writer's open breaks it (SIGIO)
 *   wlease  a write lease (F_WRLCK, the file open read-write); a reader's open breaks it
 *   devzero MAP_SHARED of /dev/zero (shared with a child that writes to it on request)
 *   devnode unlinked character device nodes held open: DIR/null (1:3, mode 0640, read-write at
 *           fd 3) and DIR/zero (1:5, mode 0604, read-only at fd 4): still devices with their
 *           numbers and modes, nlink 0, named "... (deleted)"; null takes a write and reads EOF,
 *           zero reads zeros
 *   iouring  an io_uring (its ring mapped)
 *   epollchild  an epoll target whose only descriptor is in a child
 *   procout  /proc/PID/status of a process outside the tree (the parent; a child's: procfiles.c)
 * The verdict is "check ok MODE" or "check bad MODE what". */
#include "workload.h"
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static char dir[2048], path[4096];
static volatile sig_atomic_t got_sigio;
static void on_sigio(int s) { (void)s; got_sigio++; }

static int check_cwd(void) {
	struct stat st;
	if (stat(".", &st) || !S_ISDIR(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 07777) != 0710) return 0;
	char link[4200], want[4200];
	ssize_t n = readlink("/proc/self/cwd", link, sizeof link - 1);
	if (n < 0) return 0;
	link[n] = 0;
	snprintf(want, sizeof want, "%s (deleted)", path);
	if (strcmp(link, want)) return 0;
	/* nothing can be made in a removed directory */
	return open("x", O_CREAT | O_WRONLY, 0600) < 0 && errno == ENOENT;
}

/* udir2 and chroot (see above): the descriptor checked later (chroot: the pipe the answers come
 * on), -1 for an unknown mode, -2 (said why) when setting up failed */
static int ask_w = -1;
static struct stat dir_st;
static int other_modes(const char *mode) {
	if (!strcmp(mode, "udir2")) {
		char inner[4200];
		snprintf(path, sizeof path, "%s/gone-parent", dir);
		snprintf(inner, sizeof inner, "%s/gone-open", path);
		if (mkdir(path, 0755) || mkdir(inner, 0750)) { wl_say("error mkdir"); return -2; }
		int fd = open(inner, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || rmdir(inner) || rmdir(path)) { wl_say("error udir2"); return -2; }
		return fd;
	}
	if (strcmp(mode, "chroot")) return -1;
	int ask[2], answer[2];
	snprintf(path, sizeof path, "%s/root", dir);
	if (pipe(ask) || pipe(answer) || mkdir(path, 0755) || stat(dir, &dir_st)) { wl_say("error chroot setup"); return -2; }
	snprintf(path, sizeof path, "%s/root/inside", dir);
	int f = open(path, O_CREAT | O_WRONLY, 0644);
	if (f < 0 || write(f, "in", 2) != 2) { wl_say("error chroot file"); return -2; }
	close(f);
	if (chdir(dir)) { wl_say("error chdir"); return -2; }
	pid_t c = fork();
	if (c == 0) {
		snprintf(path, sizeof path, "%s/root", dir);
		if (chroot(path)) _exit(1);
		char b;
		while (read(ask[0], &b, 1) == 1) {
			struct stat st;
			char got[4] = "";
			int in = open("/inside", O_RDONLY);
			int ok = in >= 0 && read(in, got, 3) == 2 && !memcmp(got, "in", 2) && !stat(".", &st) && st.st_ino == dir_st.st_ino &&
				 st.st_dev == dir_st.st_dev && access(dir, F_OK) != 0;
			if (in >= 0) close(in);
			char v = ok ? 'y' : 'n';
			if (write(answer[1], &v, 1) != 1) _exit(1);
		}
		_exit(0);
	}
	if (c < 0) { wl_say("error fork"); return -2; }
	ask_w = ask[1];
	return answer[0];
}

/* the verdict on udir2 and chroot: 0 or what is wrong */
static const char *other_check(const char *mode, int fd) {
	struct stat st;
	if (!strcmp(mode, "udir2")) {
		snprintf(path, sizeof path, "%s/gone-parent", dir);
		if (fstat(fd, &st) || !S_ISDIR(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 07777) != 0750) return "fstat";
		if (access(path, F_OK) == 0) return "parent-left";
		return 0;
	}
	char b = 'c', v = 0;
	if (write(ask_w, &b, 1) != 1 || read(fd, &v, 1) != 1 || v != 'y') return "child-root";
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1];
	snprintf(dir, sizeof dir, "%s", argv[2]);
	wl_detach(argv[3]);
	int fd = -1, efd = -1;
	char *mem = 0;
	pid_t child = 0;
	int lease_type = strcmp(mode, "wlease") ? F_RDLCK : F_WRLCK;
	if (!strcmp(mode, "cwd")) {
		snprintf(path, sizeof path, "%s/gone", dir);
		if (mkdir(path, 0710) || chdir(path) || rmdir(path)) { wl_say("error cwd %d", errno); return 1; }
	} else if (!strcmp(mode, "udir")) {
		snprintf(path, sizeof path, "%s/gone-open", dir);
		if (mkdir(path, 0750)) { wl_say("error mkdir"); return 1; }
		fd = open(path, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || rmdir(path)) { wl_say("error udir"); return 1; }
	} else if (!strcmp(mode, "proc")) {
		fd = open("/proc/self/status", O_RDONLY);
	} else if (!strcmp(mode, "symlink")) {
		snprintf(path, sizeof path, "%s/link", dir);
		if (symlink("nowhere", path)) { wl_say("error symlink %d", errno); return 1; }
		fd = open(path, O_PATH | O_NOFOLLOW);
	} else if (!strcmp(mode, "usymlink")) {
		snprintf(path, sizeof path, "%s/ulink", dir);
		struct timespec ts[2] = { { 1000000000, 123456000 }, { 1100000000, 654321000 } };
		if (symlink("gone/target", path) || lchown(path, 1234, 5678) || utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW)) { wl_say("error symlink %d", errno); return 1; }
		fd = open(path, O_PATH | O_NOFOLLOW);
		if (fd < 0 || unlink(path)) { wl_say("error usymlink %d", errno); return 1; }
	} else if (!strcmp(mode, "epoll")) {
		int ev = eventfd(0, EFD_NONBLOCK);
		efd = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0x1234567890ULL };
		if (ev < 0 || efd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, ev, &e)) { wl_say("error epoll"); return 1; }
		fd = dup2(ev, 40);
		close(ev);
	} else if (!strcmp(mode, "epollchild")) {
		/* the target's only descriptor is in a child: the parent's epoll watches a file it no longer holds */
		int ev = eventfd(0, EFD_NONBLOCK);
		efd = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = 7 };
		if (ev < 0 || efd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, ev, &e)) { wl_say("error epoll"); return 1; }
		child = fork();
		if (child == 0) { close(efd); for (;;) pause(); }
		close(ev);
		fd = efd;
	} else if (!strcmp(mode, "procout")) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/status", (int)getppid());
		fd = open(p, O_RDONLY);
	} else if (!strcmp(mode, "lease") || !strcmp(mode, "wlease")) {
		snprintf(path, sizeof path, "%s/leased", dir);
		int w = open(path, O_CREAT | O_WRONLY, 0644);
		if (w < 0) { wl_say("error create"); return 1; }
		close(w);
		signal(SIGIO, on_sigio);
		fd = open(path, lease_type == F_RDLCK ? O_RDONLY : O_RDWR);
		if (fd < 0 || fcntl(fd, F_SETLEASE, lease_type)) { wl_say("error lease %d", errno); return 1; }
	} else if (!strcmp(mode, "devzero")) {
		int z = open("/dev/zero", O_RDWR);
		mem = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
		close(z);
		if (mem == MAP_FAILED) { wl_say("error mmap"); return 1; }
		strcpy(mem, "parent wrote this");
		child = fork();
		if (child == 0) {
			/* the child answers the parent: whatever is at 4096 comes back doubled at 8192 */
			for (;;) {
				if (mem[4096] && !mem[8192]) { memcpy(mem + 8192, mem + 4096, 64); memcpy(mem + 8192 + strlen(mem + 4096), mem + 4096, 64 - strlen(mem + 4096)); }
				usleep(10000);
			}
		}
	} else if (!strcmp(mode, "devnode")) {
		char zpath[4200];
		snprintf(path, sizeof path, "%s/null", dir);
		snprintf(zpath, sizeof zpath, "%s/zero", dir);
		if (mknod(path, S_IFCHR | 0640, makedev(1, 3)) || chmod(path, 0640)) { wl_say("error mknod"); return 1; }
		if (mknod(zpath, S_IFCHR | 0604, makedev(1, 5)) || chmod(zpath, 0604)) { wl_say("error mknod"); return 1; }
		fd = open(path, O_RDWR);
		efd = open(zpath, O_RDONLY);
		if (fd != 3 || efd != 4) { wl_say("error open"); return 1; }
		unlink(path);
		unlink(zpath);
	} else if (!strcmp(mode, "iouring")) {
		struct { unsigned sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3]; unsigned long long off[10]; } p;
		memset(&p, 0, sizeof p);
		fd = syscall(SYS_io_uring_setup, 4, &p);
		if (fd >= 0) mem = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	} else if ((fd = other_modes(mode)) == -2) {
		return 1;
	} else if (fd == -1) {
		wl_say("error mode");
		return 2;
	}
	if (fd < 0 && !mem && strcmp(mode, "cwd")) { wl_say("error open %d", errno); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (int round = 0;; round++) {
		wl_wait_check();
		const char *bad = 0;
		if (!strcmp(mode, "udir2") || !strcmp(mode, "chroot")) {
			bad = other_check(mode, fd);
		} else if (!strcmp(mode, "cwd")) {
			if (!check_cwd()) bad = "cwd";
		} else if (!strcmp(mode, "udir")) {
			struct stat st;
			if (fstat(fd, &st) || !S_ISDIR(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 07777) != 0750) bad = "fstat";
			else if (openat(fd, "x", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT) bad = "openat";
		} else if (!strcmp(mode, "symlink")) {
			struct stat st;
			char target[64] = "";
			if (fstatat(fd, "", &st, AT_EMPTY_PATH) || !S_ISLNK(st.st_mode)) bad = "fstat";
			else if (readlinkat(fd, "", target, sizeof target - 1) != 7 || strcmp(target, "nowhere")) bad = "readlink";
			else if ((fcntl(fd, F_GETFL) & (O_PATH | O_NOFOLLOW)) != (O_PATH | O_NOFOLLOW)) bad = "flags";
		} else if (!strcmp(mode, "usymlink")) {
			struct stat st;
			char target[64] = "", link[64], name[4200 + 16];
			snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, name, sizeof name - 1);
			name[n > 0 ? n : 0] = 0;
			char want[4200 + 16];
			snprintf(want, sizeof want, "%s (deleted)", path);
			if (fstatat(fd, "", &st, AT_EMPTY_PATH) || !S_ISLNK(st.st_mode)) bad = "fstat";
			else if (st.st_nlink != 0) bad = "nlink";
			else if (st.st_uid != 1234 || st.st_gid != 5678) bad = "owner";
			/* (not atime: each readlinkat below moves it, relatime's ctime rule) */
			else if (st.st_mtim.tv_sec != 1100000000 || st.st_mtim.tv_nsec / 1000 != 654321) bad = "mtime";
			else if (readlinkat(fd, "", target, sizeof target - 1) != 11 || strcmp(target, "gone/target")) bad = "readlink";
			else if ((fcntl(fd, F_GETFL) & (O_PATH | O_NOFOLLOW)) != (O_PATH | O_NOFOLLOW)) bad = "flags";
			else if (strcmp(name, want)) bad = "name";
			else if (!access(path, F_OK) || errno != ENOENT || faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0) bad = "linked";
		} else if (!strcmp(mode, "proc")) {
			char buf[4096], want[64];
			ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
			buf[n > 0 ? n : 0] = 0;
			snprintf(want, sizeof want, "\nPid:\t%d\n", (int)getpid());
			if (!strstr(buf, want)) bad = "status";
		} else if (!strcmp(mode, "epoll")) {
			uint64_t one = 1;
			struct epoll_event e;
			if (write(fd, &one, 8) != 8) bad = "write";
			else if (epoll_wait(efd, &e, 1, 1000) != 1 || e.data.u64 != 0x1234567890ULL) bad = "epoll_wait";
			else if (read(fd, &one, 8) != 8) bad = "read";
		} else if (!strcmp(mode, "lease") || !strcmp(mode, "wlease")) {
			if (fcntl(fd, F_GETLEASE) != lease_type) bad = "getlease";
			else {
				/* a writer (a child: leases do not break for their holder's own opens) */
				pid_t c = fork();
				if (c == 0) _exit(open(path, (lease_type == F_RDLCK ? O_WRONLY : O_RDONLY) | O_NONBLOCK) < 0 && errno == EWOULDBLOCK ? 0 : 1);
				int st;
				waitpid(c, &st, 0);
				for (int i = 0; i < 100 && !got_sigio; i++) usleep(10000);
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = "not-broken";
				else if (!got_sigio) bad = "no-sigio";
				/* give it up and take it again for the next round */
				fcntl(fd, F_SETLEASE, F_UNLCK);
				got_sigio = 0;
				if (fcntl(fd, F_SETLEASE, lease_type)) bad = "relock";
			}
		} else if (!strcmp(mode, "devzero")) {
			if (strcmp(mem, "parent wrote this")) bad = "contents";
			else {
				char tok[32];
				snprintf(tok, sizeof tok, "r%d-", round);
				memset(mem + 8192, 0, 64);
				strcpy(mem + 4096, tok);
				int ok = 0;
				for (int i = 0; i < 200 && !ok; i++) { usleep(10000); ok = mem[8192] != 0; }
				char want[64];
				snprintf(want, sizeof want, "%s%s", tok, tok);
				if (!ok || strncmp(mem + 8192, want, strlen(want))) bad = "child";
				memset(mem + 4096, 0, 64);
			}
		} else if (!strcmp(mode, "devnode")) {
			static const struct { int fd; unsigned minor, perm; const char *name; } n[2] = {{3, 3, 0640, "null"}, {4, 5, 0604, "zero"}};
			for (int i = 0; i < 2 && !bad; i++) {
				struct stat st;
				char link[64], got[4200] = "", want[4200];
				snprintf(link, sizeof link, "/proc/self/fd/%d", n[i].fd);
				ssize_t l = readlink(link, got, sizeof got - 1);
				if (l > 0) got[l] = 0;
				snprintf(want, sizeof want, "%s/%s (deleted)", dir, n[i].name);
				if (fstat(n[i].fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, n[i].minor)) bad = "device";
				else if ((st.st_mode & 07777) != n[i].perm) bad = "mode";
				else if (st.st_nlink != 0 || strcmp(got, want)) bad = "unlinked";
				else if ((fcntl(n[i].fd, F_GETFL) & O_ACCMODE) != (i ? O_RDONLY : O_RDWR)) bad = "flags";
			}
			char b[16] = "not zeros";
			if (!bad && write(fd, "x", 1) != 1) bad = "write";
			if (!bad && read(fd, b, sizeof b) != 0) bad = "null-read";
			if (!bad && (read(efd, b, sizeof b) != sizeof b || memcmp(b, (char[16]){0}, sizeof b))) bad = "zero-read";
		}
		if (bad) wl_say("check bad %s %s", mode, bad);
		else wl_say("check ok %s", mode);
	}
}
