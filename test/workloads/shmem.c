/* shmem MODE STATEFILE (MODE: 'zero' = the zero area only, 'shm' = everything): memory the dump must treat specially.
 *  zero: 64 private anonymous pages; pages 0-3 written (0x5A), pages 4-63 only read, so the
 *        kernel maps them to the shared zero page (CRIU does not dump those).
 *  shm:  16 MAP_SHARED|MAP_ANONYMOUS pages shared with a forked child; the parent fills pages 0-7
 *        (page i: every byte 0x30+i), the child fills page 8 (0x77) after the fork; pages 9-14
 *        are never touched. Page 15 is the live link: the child keeps copying its byte 0 to
 *        byte 1, so a write by the parent comes back only while the memory is really shared.
 * "ready pid=P child=C zero=0xADDR shm=0xADDR" once set up. On SIGUSR1 the parent re-checks
 * all of it (that the child is alive, and that a new token makes the round trip through the
 * child): "check ok" / "check bad what=...". */
#include <stdint.h>
#include <sys/mman.h>
#include "workload.h"

#define PG 4096

static int all(const unsigned char *p, size_t n, unsigned char v) {
	for (size_t i = 0; i < n; i++)
		if (p[i] != v) return 0;
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int with_shm = strcmp(argv[1], "shm") == 0;
	wl_detach(argv[2]);
	unsigned char *zero = mmap(0, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *shm = mmap(0, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (zero == MAP_FAILED || shm == MAP_FAILED) { wl_say("error mmap"); return 1; }
	memset(zero, 0x5A, 4 * PG);
	volatile unsigned sum = 0;
	for (size_t p = 4; p < 64; p++) sum += zero[p * PG];
	if (!with_shm) {
		munmap(shm, 16 * PG);
		shm = 0;
	}
	pid_t child = -1;
	if (with_shm) {
	for (int i = 0; i < 8; i++) memset(shm + i * PG, 0x30 + i, PG);
	child = fork();
	if (child < 0) { wl_say("error fork"); return 1; }
	if (child == 0) {
		memset(shm + 8 * PG, 0x77, PG);
		volatile unsigned char *link = shm + 15 * PG;
		for (;;) {
			if (link[1] != link[0]) link[1] = link[0];
			usleep(1000);
		}
	}
	while (shm[8 * PG] != 0x77) usleep(1000);
	}
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d zero=%p shm=%p", (int)getpid(), (int)child, (void *)zero, (void *)shm);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		if (!all(zero, 4 * PG, 0x5A) || !all(zero + 4 * PG, 60 * PG, 0)) bad = "zero";
		for (int i = 0; i < 8 && !bad && shm; i++)
			if (!all(shm + i * PG, PG, 0x30 + i)) bad = "shm";
		if (!bad && shm && (!all(shm + 8 * PG, PG, 0x77) || !all(shm + 9 * PG, 6 * PG, 0) || !all(shm + 15 * PG + 2, PG - 2, 0))) bad = "shm-child";
		if (!bad && shm && kill(child, 0) != 0) bad = "child";
		if (!bad && shm) {
			/* a fresh token must come back through the child within 2 s */
			volatile unsigned char *link = shm + 15 * PG;
			static unsigned char token;
			token = (unsigned char)(token % 255 + 1);
			if (link[0] == token) token = (unsigned char)(token % 255 + 1);
			link[0] = token;
			int n = 0;
			while (link[1] != token && n++ < 2000) usleep(1000);
			if (link[1] != token) bad = "not-shared";
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
