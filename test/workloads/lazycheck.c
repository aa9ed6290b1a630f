/* lazycheck MIB MODE STATEFILE [TICKFILE]: MIB of private anonymous memory with a known pattern,
 * plus an 8 MiB area where only every 4th page was ever written (the others must read as zeros).
 * On SIGUSR1 every word is checked ("check ok bad=0" / "check bad bad=N"), after what MODE asks:
 *   check   nothing more;
 *   fork    a child forked first checks every word too (its verdict is added: child=N);
 *   munmap  the second half of the pattern is unmapped, then the first quarter moved elsewhere
 *           with mremap and checked there (done=unmap+remap);
 *   tick    from the start, a CLOCK_REALTIME timestamp (ns) is written at offset 0 of TICKFILE
 *           every 50 us: after a restore, the first one tells when the workload ran again. */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define SPARSE (8u << 20)
static uint64_t word(size_t i, uint64_t salt) { return (i + 1) * 0x9E3779B97F4A7C15ull + salt; }

static size_t check_range(const uint64_t *m, size_t from, size_t to, uint64_t salt) {
	size_t bad = 0;
	for (size_t i = from; i < to; i++) bad += m[i] != word(i, salt);
	return bad;
}

static size_t check_sparse(const uint64_t *s) {
	size_t bad = 0, per = 4096 / 8;
	for (size_t i = 0; i < SPARSE / 8; i++) bad += s[i] != ((i / per) % 4 == 0 ? word(i, 7) : 0);
	return bad;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	size_t words = (size_t)atol(argv[1]) * 1024 * 1024 / 8;
	const char *mode = argv[2];
	int tick = -1;
	if (!strcmp(mode, "tick") && argc < 5) return 2;
	wl_detach(argv[3]);
	if (!strcmp(mode, "tick")) tick = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0644);
	wl_handle_usr1();
	uint64_t *mem = mmap(0, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *sp = mmap(0, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || sp == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (size_t i = 0; i < words; i++) mem[i] = word(i, 0);
	for (size_t i = 0; i < SPARSE / 8; i++)
		if ((i / 512) % 4 == 0) sp[i] = word(i, 7);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		if (tick >= 0) {
			while (!wl_want_check) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
				if (pwrite(tick, &ns, sizeof ns, 0) != sizeof ns) return 1;
				usleep(50);
			}
			wl_want_check = 0;
		} else
			wl_wait_check();
		size_t bad = 0, child = 0;
		if (!strcmp(mode, "fork")) {
			pid_t c = fork();
			if (c < 0) { wl_say("error fork"); return 1; }
			if (c == 0) _exit(check_range(mem, 0, words, 0) + check_sparse(sp) ? 1 : 0);
			int st;
			if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) child = 1000000;
			else child = WEXITSTATUS(st);
		}
		if (!strcmp(mode, "munmap") && words >= 8) {
			size_t half = words / 2, q = words / 4;
			if (munmap(mem + half, (words - half) * 8)) { wl_say("error munmap"); return 1; }
			void *to = mmap(0, q * 8, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			uint64_t *moved = mremap(mem, q * 8, q * 8, MREMAP_MAYMOVE | MREMAP_FIXED, to);
			if (to == MAP_FAILED || moved == MAP_FAILED) { wl_say("error mremap"); return 1; }
			bad += check_range(moved, 0, q, 0) + check_range(mem, q, half, 0);
			bad += check_sparse(sp);
			wl_say("check %s bad=%zu done=unmap+remap", bad ? "bad" : "ok", bad);
			continue;
		}
		bad += check_range(mem, 0, words, 0) + check_sparse(sp);
		if (!strcmp(mode, "fork")) wl_say("check %s bad=%zu child=%zu", bad || child ? "bad" : "ok", bad, child);
		else wl_say("check %s bad=%zu", bad ? "bad" : "ok", bad);
	}
}
