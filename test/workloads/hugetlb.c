/* hugetlb [ipc|cow] STATEFILE: memory on 2 MiB huge pages as a dump must carry it (needs 7 free huge
 * pages of 2 MiB, 8 with ipc; the test sets vm.nr_hugepages). The child takes its own copy of
 * the private huge pages it holds from the parent (a write of a byte as it is to each: the
 * kernel copies the page), but with `cow`, where they stay shared copy-on-write since the fork
 * (a restore makes that sharing again).
 *  priv  MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB, one huge page, filled with a
 *        pattern (byte i: i*7+1 mod 251), except its last 4 KiB page left 0.
 *  shared MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB, one huge page: pattern (i*13+5 mod 241) past
 *        its first 64 bytes. A forked child shares it and keeps copying byte 0 to byte 1 (a token
 *        the parent writes comes back only while the memory is really shared); the child also
 *        holds priv (copy-on-write since the fork) and writes its verdict on it into byte 2
 *        every 100 ms (1 intact, 2 changed; the parent clears it and waits for a fresh one).
 *  memfd "crtools huge", MFD_HUGETLB|MFD_HUGE_2MB|MFD_ALLOW_SEALING, two huge pages long: the
 *        first written through a MAP_SHARED mapping of both (pattern i*3+11 mod 239), the second
 *        a hole; position 4097; sealed F_SEAL_GROW|F_SEAL_SHRINK. A MAP_PRIVATE mapping of its
 *        first huge page with byte 10 written ('P': a private copy, the memfd keeps its byte).
 *  ipc   (only when asked) the root first unshares its IPC namespace and makes a SysV segment
 *        of 2 MiB (CRIU 4.2 restores none whose size is not a multiple of its pages) with
 *        SHM_HUGETLB|SHM_HUGE_2MB (key 0x5eed0042, mode 0600), filled
 *        with a pattern (i*5+3 mod 233) and kept attached; checked by its id, key, size, mode,
 *        contents and attach (2 MiB pages).
 * Each area is checked to be on huge pages of 2 MiB again (smaps KernelPageSize, VmFlags ht),
 * the memfd to be one of hugetlbfs (its link, filesystem, block size, seals, size, position).
 * "ready pid=P child=C fd=F" once set up (or "error ..."); on SIGUSR1 "check ok" or
 * "check bad what=...". */
#include "workload.h"
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#define HPAGE (2UL << 20)
#define PG 4096UL
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#define MEMFD_POS 4097
#ifndef SHM_HUGE_2MB
#define SHM_HUGE_2MB (21 << 26)
#endif
#define SHM_KEY 0x5eed0042
#define SHM_SIZE HPAGE

static unsigned char priv_byte(size_t i) { return (unsigned char)((i * 7 + 1) % 251); }
static unsigned char shared_byte(size_t i) { return (unsigned char)((i * 13 + 5) % 241); }
static unsigned char memfd_byte(size_t i) { return (unsigned char)((i * 3 + 11) % 239); }
static unsigned char shm_byte(size_t i) { return (unsigned char)((i * 5 + 3) % 233); }

static int priv_intact(const unsigned char *p) {
	for (size_t i = 0; i < HPAGE - PG; i++)
		if (p[i] != priv_byte(i)) return 0;
	for (size_t i = HPAGE - PG; i < HPAGE; i++)
		if (p[i]) return 0;
	return 1;
}

/* the smaps block of the area at addr: on 2 MiB pages, VmFlags with ht */
static const char *on_huge_pages(void *addr, const char *name) {
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f) return "smaps";
	char line[512], want[64];
	snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
	int in = 0, size_ok = 0, ht = 0, name_ok = 0;
	while (fgets(line, sizeof line, f)) {
		if (strchr(line, '-') && strncmp(line, want, strlen(want)) == 0) {
			in = 1;
			name_ok = strstr(line, name) != 0;
			continue;
		}
		if (!in) continue;
		if (!strncmp(line, "KernelPageSize:", 15)) size_ok = strstr(line, " 2048 kB") != 0;
		if (!strncmp(line, "VmFlags:", 8)) {
			ht = strstr(line, " ht") != 0;
			break;
		}
	}
	fclose(f);
	if (!in) return "no-area";
	if (!name_ok) return "area-name";
	if (!size_ok) return "page-size";
	if (!ht) return "vmflags";
	return 0;
}

static unsigned char *priv, *shared, *mfmap, *mfpriv, *shm;
static int mfd, shmid = -1;

static const char *shm_check(void) {
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) || ds.shm_segsz != SHM_SIZE || (ds.shm_perm.mode & 0777) != 0600 || ds.shm_perm.__key != SHM_KEY) return "shm-stat";
	if (shmget(SHM_KEY, 0, 0) != shmid) return "shm-key";
	for (size_t i = 0; i < SHM_SIZE; i++)
		if (shm[i] != shm_byte(i)) return "shm-data";
	char name[32];
	snprintf(name, sizeof name, "/SYSV%08x", SHM_KEY);
	return on_huge_pages(shm, name);
}

static const char *check(void) {
	const char *why;
	if (!priv_intact(priv)) return "priv";
	for (size_t i = 64; i < HPAGE; i++)
		if (shared[i] != shared_byte(i)) return "shared";
	for (size_t i = 0; i < HPAGE; i++)
		if (mfmap[i] != memfd_byte(i)) return "memfd";
	for (size_t i = HPAGE; i < 2 * HPAGE; i++)
		if (mfmap[i]) return "memfd-hole";
	for (size_t i = 0; i < HPAGE; i++)
		if (mfpriv[i] != (i == 10 ? 'P' : memfd_byte(i))) return "memfd-private";
	if ((why = on_huge_pages(priv, "/anon_hugepage"))) return why;
	if ((why = on_huge_pages(shared, "/anon_hugepage"))) return why;
	if ((why = on_huge_pages(mfmap, "/memfd:crtools huge"))) return why;
	if ((why = on_huge_pages(mfpriv, "/memfd:crtools huge"))) return why;
	char path[64], link[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0) return "readlink";
	link[n] = 0;
	if (strcmp(link, "/memfd:crtools huge (deleted)")) return "memfd-link";
	struct statfs sf;
	struct stat st;
	if (fstatfs(mfd, &sf) || sf.f_type != HUGETLBFS_MAGIC) return "memfd-fstype";
	if (fstat(mfd, &st) || st.st_blksize != (blksize_t)HPAGE || st.st_size != (off_t)(2 * HPAGE)) return "memfd-stat";
	if (fcntl(mfd, F_GET_SEALS) != (F_SEAL_GROW | F_SEAL_SHRINK)) return "memfd-seals";
	if (lseek(mfd, 0, SEEK_CUR) != MEMFD_POS) return "memfd-pos";
	if (shmid >= 0 && (why = shm_check())) return why;
	if (ftruncate(mfd, 4 * HPAGE) == 0 || errno != EPERM) return "memfd-grow-seal";
	/* the child's verdict on priv, and the sharing of shared */
	shared[2] = 0;
	for (int i = 0; i < 2000 && shared[2] == 0; i++) usleep(1000);
	if (shared[2] != 1) return shared[2] == 2 ? "child-priv" : "child-verdict";
	static unsigned char token = 0x40;
	token = token == 0x7f ? 0x41 : token + 1;
	shared[0] = token;
	for (int i = 0; i < 2000 && shared[1] != token; i++) usleep(1000);
	if (shared[1] != token) return "shared-not-shared";
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int ipc = argc > 2 && strcmp(argv[1], "ipc") == 0;
	int cow = argc > 2 && strcmp(argv[1], "cow") == 0;
	wl_detach(argv[argc - 1]);
	if (ipc) {
		if (unshare(CLONE_NEWIPC)) { wl_say("error unshare errno=%d", errno); return 1; }
		shmid = shmget(SHM_KEY, SHM_SIZE, SHM_HUGETLB | SHM_HUGE_2MB | IPC_CREAT | IPC_EXCL | 0600);
		if (shmid < 0) { wl_say("error shmget errno=%d", errno); return 1; }
		shm = shmat(shmid, 0, 0);
		if (shm == (void *)-1) { wl_say("error shmat errno=%d", errno); return 1; }
		for (size_t i = 0; i < SHM_SIZE; i++) shm[i] = shm_byte(i);
	}

	priv = mmap(0, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	shared = mmap(0, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED) { wl_say("error mmap errno=%d", errno); return 1; }
	for (size_t i = 0; i < HPAGE - PG; i++) priv[i] = priv_byte(i);
	memset(shared, 0, 64);
	for (size_t i = 64; i < HPAGE; i++) shared[i] = shared_byte(i);

	mfd = memfd_create("crtools huge", MFD_HUGETLB | MFD_HUGE_2MB | MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, 2 * HPAGE) != 0) { wl_say("error memfd errno=%d", errno); return 1; }
	mfmap = mmap(0, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mfmap == MAP_FAILED) { wl_say("error mmap memfd errno=%d", errno); return 1; }
	for (size_t i = 0; i < HPAGE; i++) mfmap[i] = memfd_byte(i);
	mfpriv = mmap(0, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	if (mfpriv == MAP_FAILED) { wl_say("error mmap memfd private errno=%d", errno); return 1; }
	mfpriv[10] = 'P';
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) != 0) { wl_say("error seal errno=%d", errno); return 1; }
	lseek(mfd, MEMFD_POS, SEEK_SET);

	pid_t child = fork();
	if (child < 0) { wl_say("error fork"); return 1; }
	if (child == 0) {
		volatile unsigned char *s = shared;
		if (!cow) {
			/* copy-on-write broken: the child's own copies, the same bytes */
			((volatile unsigned char *)priv)[0] = priv[0];
			((volatile unsigned char *)mfpriv)[10] = mfpriv[10];
		}
		for (unsigned n = 0;; n++) {
			if (s[1] != s[0]) s[1] = s[0];
			if (n % 100 == 0) s[2] = priv_intact(priv) ? 1 : 2;
			usleep(1000);
		}
	}
	for (int i = 0; i < 2000 && shared[2] == 0; i++) usleep(1000);

	signal(SIGUSR1, wl_on_usr1);
	const char *why = check();
	if (why) { wl_say("error setup what=%s", why); kill(child, SIGKILL); return 1; }
	wl_say("ready pid=%d child=%d fd=%d", (int)getpid(), (int)child, mfd);
	for (;;) {
		pause();
		if (!wl_want_check) continue;
		wl_want_check = 0;
		why = check();
		if (why) wl_say("check bad what=%s", why);
		else wl_say("check ok");
	}
}
