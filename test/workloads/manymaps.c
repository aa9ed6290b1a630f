/* manymaps N STATEFILE: one process with N private anonymous areas of one page each, written
 * (one reservation carved up, every other page read-only so that neighbours never merge).
 * "ready pid=N"; on SIGUSR1 it checks every page's word: "check ok n=N" or "check bad n=M". */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int n = atoi(argv[1]);
	wl_detach(argv[2]);
	wl_handle_usr1();
	long psz = sysconf(_SC_PAGESIZE);
	char *base = mmap(0, (size_t)n * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (int i = 0; i < n; i++) {
		uint64_t *w = (uint64_t *)(base + (size_t)i * psz);
		w[0] = 0x9E3779B97F4A7C15ull * (i + 1);
		if (i % 2 && mprotect(w, psz, PROT_READ)) { wl_say("error mprotect %d", i); return 1; }
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int got = 0;
		for (int i = 0; i < n; i++) got += *(uint64_t *)(base + (size_t)i * psz) == 0x9E3779B97F4A7C15ull * (i + 1);
		wl_say("check %s n=%d", got == n ? "ok" : "bad", got);
	}
}
