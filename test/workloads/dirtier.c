/* dirtier MIB RATE UFFD STATEFILE: MIB of private anonymous memory, each page filled from its own
 * generation number (kept in a second area). SIGUSR2 rewrites the next 1/8 of the pages (round
 * robin, a new generation each); RATE > 0 also rewrites RATE MiB per second on its own, as a
 * program that keeps writing. UFFD=1: the program also holds a userfaultfd of its own, with a
 * 1 MiB area of its registered (missing mode, every page present): a dirty tracker cannot take
 * that area. On SIGUSR1 every word of every page is checked against its generation (and, with
 * UFFD=1, the area is registered again with the program's own userfaultfd, which must still
 * work): "check ok bad=0 gen=G" or "check bad bad=N". */
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/userfaultfd.h>
#include "workload.h"

static volatile sig_atomic_t want_dirty;
static void on_usr2(int sig) { (void)sig; want_dirty = 1; }

static uint64_t word(size_t page, uint64_t gen, size_t i) { return (page + 1) * 0x9E3779B97F4A7C15ull ^ (gen * 0x1000193ull + i); }

int main(int argc, char **argv) {
	if (argc < 5) return 2;
	size_t pages = (size_t)atol(argv[1]) * 256, words = 512;
	long rate = atol(argv[2]);
	int uffd_mode = atoi(argv[3]), uffd = -1;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	signal(SIGUSR2, on_usr2);
	/* one area, PROT_NONE pages at both ends: no neighbour of the program's merges with it */
	size_t gen_bytes = (pages * 8 + 4095) & ~(size_t)4095, total = pages * 4096 + gen_bytes + (1 << 20);
	char *area = mmap(0, total + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || mprotect(area + 4096, total, PROT_READ | PROT_WRITE)) { wl_say("error mmap"); return 1; }
	uint64_t *mem = (uint64_t *)(area + 4096), *gen = (uint64_t *)(area + 4096 + pages * 4096);
	char *own = area + 4096 + pages * 4096 + gen_bytes;
	for (size_t p = 0; p < pages; p++) { gen[p] = 1; for (size_t i = 0; i < words; i++) mem[p * words + i] = word(p, 1, i); }
	memset(own, 0x5a, 1 << 20);
	struct uffdio_register reg = { .range = { (unsigned long)own, 1 << 20 }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (uffd_mode) {
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		struct uffdio_api api = { .api = UFFD_API };
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) { wl_say("error uffd"); return 1; }
	}
	wl_say("ready pid=%d", (int)getpid());
	size_t cursor = 0;
	uint64_t g = 1;
	double carry = 0;
	for (;;) {
		if (wl_want_check) {
			wl_want_check = 0;
			size_t bad = 0;
			for (size_t p = 0; p < pages; p++)
				for (size_t i = 0; i < words; i++) bad += mem[p * words + i] != word(p, gen[p], i);
			for (size_t i = 0; i < (1 << 20); i++) bad += own[i] != 0x5a;
			if (uffd_mode && ioctl(uffd, UFFDIO_REGISTER, &reg)) bad += 1000000;
			wl_say("check %s bad=%zu gen=%llu", bad ? "bad" : "ok", bad, (unsigned long long)g);
		}
		size_t n = 0;
		if (want_dirty) { want_dirty = 0; n = pages / 8; }
		if (rate > 0) { carry += (double)rate * 256 / 100; n += (size_t)carry; carry -= (size_t)carry; }
		if (n) g++;
		for (size_t k = 0; k < n; k++) {
			size_t p = cursor++ % pages;
			gen[p] = g;
			for (size_t i = 0; i < words; i++) mem[p * words + i] = word(p, g, i);
		}
		usleep(10000);
	}
}
