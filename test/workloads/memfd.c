/* memfd STATEFILE: memfds as a dump must carry them (their filesystem, names, seals, sizes,
 * holes, positions and flags; one object for descriptors and mappings across processes).
 *  data  "crtools data", MFD_ALLOW_SEALING: page 0 written with write(), pages 1-2 a hole,
 *        100 bytes written at 6 pages (size 6 pages + 100), position then set to 1234; mapped
 *        MAP_SHARED (7 pages): page 3 written through the mapping (0x33); sealed
 *        F_SEAL_GROW|F_SEAL_SHRINK. A forked child shares fd and mapping: it fills page 4 (0x44)
 *        and keeps copying byte 0 of page 5 to byte 1 (a token the parent writes comes back only
 *        while the memory is really shared).
 *  wseal "wseal", written, mapped, written through the mapping and unmapped, then sealed
 *        F_SEAL_WRITE|F_SEAL_SEAL.
 *  plain "plain", without MFD_ALLOW_SEALING (so F_SEAL_SEAL only): two pages of 'c'; a second
 *        descriptor on it opened O_WRONLY|O_APPEND through /proc/self/fd; mapped MAP_PRIVATE
 *        with page 0 written ('P': a private copy, the file keeps 'c').
 *  empty "empty", MFD_CLOEXEC|MFD_ALLOW_SEALING, size 0, mode 0640, no seals.
 *  future "future", one page mapped MAP_SHARED writable, then sealed F_SEAL_FUTURE_WRITE: the
 *        mapping stays writable, write() and new writable shared mappings are refused.
 *  exec  "exec", a script ("#!/bin/true") run with execveat(fd, "", AT_EMPTY_PATH) from a forked
 *        child, at setup and at each check; also open read-only through /proc/self/fd. The open
 *        file memfd_create gave holds no write count on the inode: a restore that opens it again
 *        for writing instead makes the exec fail (ETXTBSY).
 * (memfds on huge pages: the hugetlb workload.)
 * "ready pid=P child=C fds=A,B,C,C2,D" once set up. On SIGUSR1 the parent re-checks all of it:
 * "check ok" / "check bad what=...". */
#include "workload.h"
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#define PG 4096
#define DATA_SIZE (6 * PG + 100)
#define DATA_POS 1234

static int all(const unsigned char *p, size_t n, unsigned char v) {
	for (size_t i = 0; i < n; i++)
		if (p[i] != v) return 0;
	return 1;
}

static unsigned char head_byte(size_t i) { return (unsigned char)('A' + i % 26); }
static unsigned char tail_byte(size_t i) { return (unsigned char)('z' - i % 26); }

/* the link text, the filesystem and the seals of fd */
static const char *same_file(int fd, const char *name, int seals) {
	char path[64], link[256], want[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0) return "readlink";
	link[n] = 0;
	snprintf(want, sizeof want, "/memfd:%s (deleted)", name);
	if (strcmp(link, want) != 0) return "link";
	struct statfs sf;
	if (fstatfs(fd, &sf) != 0 || sf.f_type != TMPFS_MAGIC) return "fstype";
	if (fcntl(fd, F_GET_SEALS) != seals) return "seals";
	return 0;
}

static const char *check_flags(int fd, int want) {
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) return "getfl";
	if ((fl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) != want) return "flags";
	return 0;
}

/* execveat(fd, "", AT_EMPTY_PATH) in a child: 0, or the errno the exec failed with (-1: fork/wait) */
static int exec_fd(int fd) {
	pid_t p = fork();
	if (p < 0) return -1;
	if (p == 0) {
		char *argv[] = {"true", 0}, *envp[] = {0};
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(errno & 0x7f);
	}
	int st;
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st)) return -1;
	return WEXITSTATUS(st);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);

	/* data */
	int a = memfd_create("crtools data", MFD_ALLOW_SEALING);
	unsigned char buf[PG];
	for (size_t i = 0; i < PG; i++) buf[i] = head_byte(i);
	if (a < 0 || write(a, buf, PG) != PG) { wl_say("error data"); return 1; }
	for (size_t i = 0; i < 100; i++) buf[i] = tail_byte(i);
	if (pwrite(a, buf, 100, 6 * PG) != 100) { wl_say("error data tail"); return 1; }
	lseek(a, DATA_POS, SEEK_SET);
	unsigned char *map = mmap(0, 7 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	if (map == MAP_FAILED) { wl_say("error mmap data"); return 1; }
	memset(map + 3 * PG, 0x33, PG);
	if (fcntl(a, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) != 0) { wl_say("error seal data"); return 1; }

	/* wseal */
	int b = memfd_create("wseal", MFD_ALLOW_SEALING);
	if (b < 0 || ftruncate(b, 2 * PG) != 0) { wl_say("error wseal"); return 1; }
	unsigned char *bm = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	if (bm == MAP_FAILED) { wl_say("error mmap wseal"); return 1; }
	memset(bm, 0x5e, PG + 17);
	munmap(bm, 2 * PG);
	if (fcntl(b, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) != 0) { wl_say("error seal wseal errno=%d", errno); return 1; }

	/* plain */
	int c = memfd_create("plain", 0);
	memset(buf, 'c', PG);
	if (c < 0 || write(c, buf, PG) != PG || write(c, buf, PG) != PG) { wl_say("error plain"); return 1; }
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", c);
	int c2 = open(path, O_WRONLY | O_APPEND);
	unsigned char *pm = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, c, 0);
	if (c2 < 0 || pm == MAP_FAILED) { wl_say("error plain reopen/mmap"); return 1; }
	memset(pm, 'P', PG);

	/* empty */
	int d = memfd_create("empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (d < 0 || fchmod(d, 0640) != 0) { wl_say("error empty"); return 1; }

	/* future */
	int e = memfd_create("future", MFD_ALLOW_SEALING);
	if (e < 0 || ftruncate(e, PG) != 0) { wl_say("error future"); return 1; }
	unsigned char *fm = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, e, 0);
	if (fm == MAP_FAILED) { wl_say("error mmap future"); return 1; }
	fm[0] = 'f';
	if (fcntl(e, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) { wl_say("error seal future errno=%d", errno); return 1; }

	/* exec */
	static const char script[] = "#!/bin/true\n";
	int x = memfd_create("exec", 0);
	if (x < 0 || write(x, script, sizeof script - 1) != sizeof script - 1) { wl_say("error exec"); return 1; }
	snprintf(path, sizeof path, "/proc/self/fd/%d", x);
	int xr = open(path, O_RDONLY);
	int xerr = exec_fd(x);
	if (xr < 0 || xerr) { wl_say("error exec errno=%d", xerr); return 1; }

	pid_t child = fork();
	if (child < 0) { wl_say("error fork"); return 1; }
	if (child == 0) {
		memset(map + 4 * PG, 0x44, PG);
		volatile unsigned char *link = map + 5 * PG;
		for (;;) {
			if (link[1] != link[0]) link[1] = link[0];
			usleep(1000);
		}
	}
	while (map[4 * PG] != 0x44) usleep(1000);

	wl_handle_usr1();
	wl_say("ready pid=%d child=%d fds=%d,%d,%d,%d,%d", (int)getpid(), (int)child, a, b, c, c2, d);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct stat st;
		/* data: the file through its descriptor and through the mapping */
		if (!bad) bad = same_file(a, "crtools data", F_SEAL_GROW | F_SEAL_SHRINK);
		if (!bad) bad = check_flags(a, O_RDWR);
		if (!bad && (fstat(a, &st) != 0 || st.st_size != DATA_SIZE)) bad = "data-size";
		if (!bad && lseek(a, 0, SEEK_CUR) != DATA_POS) bad = "data-pos";
		if (!bad) {
			static unsigned char all7[7 * PG];
			if (pread(a, all7, sizeof all7, 0) != DATA_SIZE) bad = "data-read";
			for (size_t i = 0; i < PG && !bad; i++)
				if (all7[i] != head_byte(i)) bad = "data-head";
			if (!bad && !all(all7 + PG, 2 * PG, 0)) bad = "data-hole";
			if (!bad && (!all(all7 + 3 * PG, PG, 0x33) || !all(map + 3 * PG, PG, 0x33))) bad = "data-mapped";
			if (!bad && !all(map + 4 * PG, PG, 0x44)) bad = "data-child";
			for (size_t i = 0; i < 100 && !bad; i++)
				if (all7[6 * PG + i] != tail_byte(i) || map[6 * PG + i] != tail_byte(i)) bad = "data-tail";
			if (!bad && !all(map + 6 * PG + 100, PG - 100, 0)) bad = "data-past-end";
		}
		/* the seals hold: no growing, no shrinking */
		if (!bad && (ftruncate(a, 8 * PG) == 0 || errno != EPERM)) bad = "data-grow";
		if (!bad && (ftruncate(a, PG) == 0 || errno != EPERM)) bad = "data-shrink";
		if (!bad && kill(child, 0) != 0) bad = "child";
		if (!bad) {
			/* a fresh token must come back through the child within 2 s */
			volatile unsigned char *link = map + 5 * PG;
			static unsigned char token;
			token = (unsigned char)(token % 255 + 1);
			if (link[0] == token) token = (unsigned char)(token % 255 + 1);
			link[0] = token;
			int n = 0;
			while (link[1] != token && n++ < 2000) usleep(1000);
			if (link[1] != token) bad = "not-shared";
		}
		/* wseal */
		if (!bad) bad = same_file(b, "wseal", F_SEAL_WRITE | F_SEAL_SEAL);
		if (!bad) bad = check_flags(b, O_RDWR);
		if (!bad && (fstat(b, &st) != 0 || st.st_size != 2 * PG)) bad = "wseal-size";
		if (!bad) {
			unsigned char two[2 * PG];
			if (pread(b, two, sizeof two, 0) != 2 * PG || !all(two, PG + 17, 0x5e) || !all(two + PG + 17, PG - 17, 0)) bad = "wseal-data";
		}
		if (!bad && (pwrite(b, "x", 1, 0) == 1 || errno != EPERM)) bad = "wseal-write";
		if (!bad) {
			void *w = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
			if (w != MAP_FAILED) { munmap(w, PG); bad = "wseal-mmap"; }
		}
		if (!bad && (fcntl(b, F_ADD_SEALS, F_SEAL_GROW) == 0 || errno != EPERM)) bad = "wseal-sealed";
		/* plain */
		if (!bad) bad = same_file(c, "plain", F_SEAL_SEAL);
		if (!bad) bad = check_flags(c, O_RDWR);
		if (!bad) bad = same_file(c2, "plain", F_SEAL_SEAL);
		if (!bad) bad = check_flags(c2, O_WRONLY | O_APPEND);
		if (!bad && (fcntl(c, F_ADD_SEALS, F_SEAL_WRITE) == 0 || errno != EPERM)) bad = "plain-sealing";
		if (!bad) {
			unsigned char two[2 * PG];
			if (pread(c, two, sizeof two, 0) != 2 * PG || !all(two, 2 * PG, 'c')) bad = "plain-data";
		}
		if (!bad && (!all(pm, PG, 'P') || !all(pm + PG, PG, 'c'))) bad = "plain-private";
		/* empty */
		if (!bad) bad = same_file(d, "empty", 0);
		if (!bad && (fstat(d, &st) != 0 || st.st_size != 0 || (st.st_mode & 07777) != 0640)) bad = "empty-stat";
		if (!bad && !(fcntl(d, F_GETFD) & FD_CLOEXEC)) bad = "empty-cloexec";
		/* future: the old mapping still writes, nothing new does */
		if (!bad) bad = same_file(e, "future", F_SEAL_FUTURE_WRITE);
		if (!bad) {
			unsigned char got[2] = {0, 0};
			fm[1] = (unsigned char)(fm[1] + 1);
			if (pread(e, got, 2, 0) != 2 || got[0] != 'f' || got[1] != fm[1]) bad = "future-mapped";
		}
		if (!bad && (pwrite(e, "x", 1, 0) == 1 || errno != EPERM)) bad = "future-write";
		if (!bad) {
			void *w = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, e, 0);
			if (w != MAP_FAILED) { munmap(w, PG); bad = "future-mmap"; }
		}
		/* exec: still runs from its memfd */
		if (!bad) bad = same_file(x, "exec", F_SEAL_SEAL);
		if (!bad) bad = check_flags(x, O_RDWR);
		if (!bad) bad = check_flags(xr, O_RDONLY);
		if (!bad && exec_fd(x) != 0) bad = "exec";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
