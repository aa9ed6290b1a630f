/* lazycheck MIB MODE STATEFILE [TICKFILE [RESUMEFILE]]: MIB of private anonymous memory with a known pattern,
 * plus an 8 MiB area where only every 4th page was ever written (the others must read as zeros).
 * On SIGUSR1 every word is checked ("check ok bad=0" / "check bad bad=N"), after what MODE asks:
 *   check   nothing more;
 *   fork    a child forked first checks every word too (its verdict is added: child=N);
 *   munmap  the second half of the pattern is unmapped, then the first quarter moved elsewhere
 *           with mremap and checked there (done=unmap+remap);
 *   tick    from the start, a CLOCK_REALTIME timestamp (ns) is written at offset 0 of TICKFILE
 *           every 50 us: after a restore, the first one tells when the workload ran again. With
 *           RESUMEFILE too, each tick that comes more than 20 ms after the one before (the first
 *           after a restore, or a long wait for a CPU) is also appended there: a reader coming
 *           late still finds the first tick after a given moment (TICKFILE has the last one).
 * MODE ns-<mode> (e.g. ns-check): the same as <mode>, by the init of a pid namespace of its own
 * (its outside parent says "ready pid=<init as crtools sees it>" and exits), so that a restore on
 * this host while the dumped tree still exists (dump --lazy-pages serves from the frozen tree)
 * takes no pid the dumped one holds. */
#include "workload.h"
#include <stdint.h>
#include <sched.h>
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
	int tick = -1, ready_fd = -1;
	if (!strcmp(mode + (strncmp(mode, "ns-", 3) ? 0 : 3), "tick") && argc < 5) return 2;
	wl_detach(argv[3]);
	if (!strncmp(mode, "ns-", 3)) {
		mode += 3;
		int p[2];
		if (unshare(CLONE_NEWPID) || pipe(p)) { wl_say("error unshare"); return 1; }
		pid_t init = fork();
		if (init < 0) return 1;
		if (init > 0) return wl_init_ready(p, init);
		close(p[0]);
		setsid();
		ready_fd = p[1];
	}
	int resumed = -1;
	uint64_t last = 0;
	if (!strcmp(mode, "tick")) tick = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (tick >= 0 && argc > 5) resumed = open(argv[5], O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
	wl_handle_usr1();
	uint64_t *mem = mmap(0, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *sp = mmap(0, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || sp == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (size_t i = 0; i < words; i++) mem[i] = word(i, 0);
	for (size_t i = 0; i < SPARSE / 8; i++)
		if ((i / 512) % 4 == 0) sp[i] = word(i, 7);
	if (ready_fd < 0) wl_say("ready pid=%d", (int)getpid());
	else if (write(ready_fd, "k", 1) != 1 || close(ready_fd)) return 1;
	for (;;) {
		if (tick >= 0) {
			while (!wl_want_check) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
				if (pwrite(tick, &ns, sizeof ns, 0) != sizeof ns) return 1;
				if (resumed >= 0 && ns - last > 20000000ull && write(resumed, &ns, sizeof ns) != sizeof ns) return 1;
				last = ns;
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
