/* guards DATAFILE STATEFILE: guard regions (MADV_GUARD_INSTALL, Linux 6.13+) in the middle of
 * areas: pages 5-6 and 11 of a 16-page private anonymous area, and page 2 of a 4-page private
 * mapping of DATAFILE (page 0 written, so a copy of its own) where the kernel allows guards in
 * file mappings (6.15+). Every other page holds its own pattern.
 * "ready pid=N fileguard=0|1"; "error noguard" when the kernel installs no guard region.
 * On SIGUSR1: "check ok guards=N" when every guard page still faults on a read (and shows bit 58
 * in /proc/self/pagemap where it did at start) and every other page holds its bytes;
 * else "check bad what=...". */
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include "workload.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PG 4096
#define ANON_PAGES 16
#define FILE_PAGES 4

static sigjmp_buf probe_env;
static void on_segv(int sig) { (void)sig; siglongjmp(probe_env, 1); }

/* 1 when reading the byte faults */
static int faults(volatile char *p) {
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, &old);
	int r = 1;
	if (!sigsetjmp(probe_env, 1)) {
		(void)*p;
		r = 0;
	}
	sigaction(SIGSEGV, &old, 0);
	return r;
}

/* bit 58 (PM_GUARD_REGION, 6.15+) of this page's pagemap entry */
static int pagemap_guard(const void *p) {
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	if (fd < 0) return -1;
	if (pread(fd, &e, sizeof e, (off_t)((uintptr_t)p / PG) * 8) != sizeof e) e = 0;
	close(fd);
	return (int)((e >> 58) & 1);
}

static char anon_byte(int page, int i) { return (char)(page * 31 + i * 7 + 1); }
static char file_byte(int page, int i) { return (char)(page * 13 + i * 3 + 5); }

static int is_anon_guard(int page) { return page == 5 || page == 6 || page == 11; }

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	wl_detach(argv[2]);
	/* a hole on each side: an area mapped beside one inherited through wl_detach's forks stays
	 * apart only by its anon_vma, which a restore does not recreate (the two would come back as one) */
	char *anon = mmap(0, (ANON_PAGES + 2) * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED) { wl_say("error mmap"); return 1; }
	munmap(anon, PG);
	munmap(anon + (ANON_PAGES + 1) * PG, PG);
	anon += PG;
	for (int p = 0; p < ANON_PAGES; p++)
		for (int i = 0; i < PG; i++) anon[p * PG + i] = anon_byte(p, i);
	if (madvise(anon + 5 * PG, 2 * PG, MADV_GUARD_INSTALL) || madvise(anon + 11 * PG, PG, MADV_GUARD_INSTALL)) {
		wl_say("error noguard");
		return 1;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { wl_say("error open"); return 1; }
	char page[PG];
	for (int p = 0; p < FILE_PAGES; p++) {
		for (int i = 0; i < PG; i++) page[i] = file_byte(p, i);
		if (write(fd, page, PG) != PG) { wl_say("error write"); return 1; }
	}
	char *file = mmap(0, FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (file == MAP_FAILED) { wl_say("error mmap file"); return 1; }
	memset(file, 'Q', PG); /* page 0: a private copy */
	int fileguard = madvise(file + 2 * PG, PG, MADV_GUARD_INSTALL) == 0;
	int bits = pagemap_guard(anon + 5 * PG) == 1; /* does this kernel show guards in pagemap? */
	wl_handle_usr1();
	wl_say("ready pid=%d fileguard=%d", (int)getpid(), fileguard);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		int guards = 0;
		for (int p = 0; p < ANON_PAGES && !bad; p++) {
			char *a = anon + p * PG;
			if (is_anon_guard(p)) {
				if (!faults(a) || !faults(a + PG - 1)) bad = "anon-guard-readable";
				else if (bits && pagemap_guard(a) != 1) bad = "anon-guard-bit";
				guards++;
				continue;
			}
			if (faults(a)) { bad = "anon-page-faults"; break; }
			for (int i = 0; i < PG; i++)
				if (a[i] != anon_byte(p, i)) { bad = "anon-data"; break; }
		}
		for (int p = 0; p < FILE_PAGES && !bad; p++) {
			char *f = file + p * PG;
			if (p == 2 && fileguard) {
				if (!faults(f)) bad = "file-guard-readable";
				else if (bits && pagemap_guard(f) != 1) bad = "file-guard-bit";
				guards++;
				continue;
			}
			if (faults(f)) { bad = "file-page-faults"; break; }
			for (int i = 0; i < PG; i++)
				if (f[i] != (p == 0 ? 'Q' : file_byte(p, i))) { bad = "file-data"; break; }
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok guards=%d", guards);
	}
}
