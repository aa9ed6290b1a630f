/* pattern MIB STATEFILE: MIB of private anonymous memory filled with a known pattern;
 * on SIGUSR1 every word is re-checked: "check ok bad=0" or "check bad bad=N". */
#include <stdint.h>
#include <sys/mman.h>
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	size_t words = (size_t)atol(argv[1]) * 1024 * 1024 / 8;
	wl_detach(argv[2]);
	uint64_t *mem = mmap(0, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (size_t i = 0; i < words; i++) mem[i] = (i + 1) * 0x9E3779B97F4A7C15ull;
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		size_t bad = 0;
		for (size_t i = 0; i < words; i++) bad += mem[i] != (i + 1) * 0x9E3779B97F4A7C15ull;
		wl_say("check %s bad=%zu", bad ? "bad" : "ok", bad);
	}
}
