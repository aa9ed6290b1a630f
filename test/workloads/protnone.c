/* protnone STATEFILE: 8 MiB of private anonymous memory filled with a pattern, then 64 pages
 * here and there made PROT_NONE: the data
 * stays behind protections a dumper's vmsplice cannot read through (CRIU's zdtm maps04). On
 * SIGUSR1 every byte is read back through /proc/self/mem (which ignores the protections, so they
 * stay as they are) and the protections through /proc/self/maps: "check ok nonepages=64" or
 * "check bad ...". */
#include "workload.h"
#include <sys/mman.h>

#define SIZE (8 << 20)
#define PAGE 4096

static unsigned char *m;

static unsigned char byte_at(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }
static int is_none(size_t page) { return page % 32 == 7; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	m = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) return 1;
	for (size_t i = 0; i < SIZE; i++) m[i] = byte_at(i);
	for (size_t p = 0; p < SIZE / PAGE; p++)
		if (is_none(p) && mprotect(m + p * PAGE, PAGE, PROT_NONE)) return 1;
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	static unsigned char buf[SIZE];
	for (;;) {
		wl_wait_check();
		int fd = open("/proc/self/mem", O_RDONLY);
		ssize_t n = fd < 0 ? -1 : pread(fd, buf, SIZE, (off_t)(unsigned long)m);
		if (fd >= 0) close(fd);
		if (n != SIZE) { wl_say("check bad read=%zd", n); continue; }
		size_t bad = SIZE;
		for (size_t i = 0; i < SIZE && bad == SIZE; i++)
			if (buf[i] != byte_at(i)) bad = i;
		if (bad != SIZE) { wl_say("check bad byte=%zu", bad); continue; }
		/* the PROT_NONE pages, counted from maps: one ---p line each (no two are adjacent) */
		FILE *f = fopen("/proc/self/maps", "r");
		char line[512];
		int none = 0;
		while (f && fgets(line, sizeof line, f)) {
			unsigned long s, e;
			char perms[8];
			if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3) continue;
			if (s >= (unsigned long)m && e <= (unsigned long)m + SIZE && !strcmp(perms, "---p")) none += (int)((e - s) / PAGE);
		}
		if (f) fclose(f);
		wl_say("check %s nonepages=%d", none == SIZE / PAGE / 32 ? "ok" : "bad", none);
	}
}
