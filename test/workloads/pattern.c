/* pattern MIB [PROCS] STATEFILE: MIB of private anonymous memory filled with a known pattern, in
 * each of PROCS processes (default 1: the workload alone; else it forks PROCS-1 children first and
 * each fills its own memory with its own pattern). On SIGUSR1 every word of every process is
 * re-checked: "check ok bad=0" or "check bad bad=N". */
#include <stdint.h>
#include <sys/mman.h>
#include "workload.h"

static uint64_t word(size_t i, int k) { return (i + 1) * 0x9E3779B97F4A7C15ull + (uint64_t)k * 0x1000193ull; }

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	size_t words = (size_t)atol(argv[1]) * 1024 * 1024 / 8;
	int procs = argc > 3 ? atoi(argv[2]) : 1, k = 0, res[2];
	pid_t kids[64];
	if (procs < 1 || procs > 64) return 2;
	wl_detach(argv[argc - 1]);
	if (pipe(res)) { wl_say("error pipe"); return 1; }
	wl_handle_usr1();
	for (int j = 1; j < procs; j++) {
		kids[j] = fork();
		if (kids[j] < 0) { wl_say("error fork"); return 1; }
		if (kids[j] == 0) { k = j; break; }
	}
	uint64_t *mem = mmap(0, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (size_t i = 0; i < words; i++) mem[i] = word(i, k);
	if (k == 0) wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		size_t bad = 0;
		for (int j = 1; k == 0 && j < procs; j++) kill(kids[j], SIGUSR1);
		for (size_t i = 0; i < words; i++) bad += mem[i] != word(i, k);
		if (k) {
			if (write(res[1], &bad, sizeof bad) != sizeof bad) return 1;
			continue;
		}
		for (int j = 1; j < procs; j++) {
			size_t b;
			if (read(res[0], &b, sizeof b) != sizeof b) { wl_say("check bad read"); return 1; }
			bad += b;
		}
		wl_say("check %s bad=%zu", bad ? "bad" : "ok", bad);
	}
}
