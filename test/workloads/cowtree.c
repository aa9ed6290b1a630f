/* cowtree MIB KIDS STATEFILE: a parent fills MIB MiB of private anonymous memory and forks KIDS
 * children that share it copy-on-write, as a forking server shares a big read-mostly heap. Each
 * child k (1..KIDS) then
 *   - writes 4 pages of its own (pages 100k..100k+3: the parent's words xor k),
 *   - writes 1 page back with the very content it had (page 100k+50: a copy of its own, equal),
 *   - drops 2 pages (page 100k+70, 100k+71: MADV_DONTNEED, they read as zeros),
 * and leaves the rest untouched (shared with the parent). Child 1 then forks a grandchild (number
 * KIDS+1) that does the same over what child 1 left. "ready pid=N" once every task has made its
 * changes; on SIGUSR1 the parent checks its memory and asks every other task (through its own
 * pipe) to check its own: "check ok kids=K grandkids=1" or "check bad what=...". Nothing but the
 * check reads the memory. */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096UL

static uint64_t *mem;
static size_t words;

static uint64_t word(size_t i) { return (i * 0x9E3779B97F4A7C15ULL) ^ 0x5eedULL; }

/* what word i holds after task k's own changes, given what it held before */
static uint64_t changed(size_t i, int k, uint64_t was) {
	size_t page = i / (PAGE / 8);
	if (page >= 100UL * k && page < 100UL * k + 4) return was ^ (uint64_t)k;
	if (page == 100UL * k + 70 || page == 100UL * k + 71) return 0;
	return was;
}

/* what word i must hold in task k (0: the parent; the grandchild went through child 1 first) */
static int kids;
static uint64_t expect(size_t i, int k) {
	uint64_t w = word(i);
	if (k == kids + 1) w = changed(i, 1, w);
	return k ? changed(i, k, w) : w;
}

static int check(int k) {
	for (size_t i = 0; i < words; i++)
		if (mem[i] != expect(i, k)) return 0;
	return 1;
}

/* task k: its own changes, then answer each byte of its pipe with its verdict */
static int ping[18][2], pong[2];
static void change(int k) {
	uint64_t *p = mem + 100UL * k * (PAGE / 8);
	for (size_t i = 0; i < 4 * PAGE / 8; i++) p[i] ^= (uint64_t)k;
	volatile uint64_t *same = mem + (100UL * k + 50) * (PAGE / 8);
	for (size_t i = 0; i < PAGE / 8; i++) same[i] = same[i];
	if (madvise(mem + (100UL * k + 70) * (PAGE / 8), 2 * PAGE, MADV_DONTNEED)) _exit(1);
}
static void answer(int k) {
	char b = 'r';
	/* done changing: the parent says ready only when every task is here and changed */
	if (write(pong[1], &b, 1) != 1) _exit(1);
	while (read(ping[k][0], &b, 1) == 1) {
		b = check(k) ? 'y' : 'n';
		if (write(pong[1], &b, 1) != 1) _exit(1);
	}
	_exit(0);
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	size_t mib = (size_t)atoi(argv[1]);
	kids = atoi(argv[2]);
	if (mib < 1 || kids < 1 || kids > 16 || 100UL * (kids + 2) * PAGE > mib << 20) return 2;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	words = (mib << 20) / 8;
	mem = mmap(0, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) return 3;
	for (size_t i = 0; i < words; i++) mem[i] = word(i);
	/* one pipe to each task (each is asked once), one back from all */
	if (pipe(pong)) return 3;
	for (int k = 1; k <= kids + 1; k++)
		if (pipe(ping[k])) return 3;
	for (int k = 1; k <= kids; k++) {
		pid_t c = fork();
		if (c < 0) return 4;
		if (c > 0) continue;
		change(k);
		if (k == 1) {
			pid_t g = fork();
			if (g < 0) _exit(1);
			if (g == 0) {
				change(kids + 1);
				answer(kids + 1);
			}
		}
		answer(k);
	}
	for (int k = 1; k <= kids + 1; k++) {
		char b;
		if (read(pong[0], &b, 1) != 1 || b != 'r') return 5;
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int good = 0;
		char b = 'c';
		for (int k = 1; k <= kids + 1; k++)
			if (write(ping[k][1], &b, 1) != 1) break;
		for (int k = 1; k <= kids + 1; k++)
			if (read(pong[0], &b, 1) == 1 && b == 'y') good++;
		if (!check(0))
			wl_say("check bad what=parent");
		else if (good != kids + 1)
			wl_say("check bad what=kids good=%d", good);
		else
			wl_say("check ok kids=%d grandkids=1", kids);
	}
}
