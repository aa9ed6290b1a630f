/* floor MIB DIR: the least a dump of MIB MiB of one process's private memory into files under DIR
 * can cost on this machine (bench/dump.mjs, issue 18). The memory is this process's own, written
 * with a pattern, and goes into files with vmsplice into a 1 MiB pipe and splice(2) out, the
 * kernel's one copy, nothing else: no ptrace, no pagemap, no images. Three ways, a JSON line each:
 *   one-file   one thread, one file: the copy a dump of one task into a pages image pays.
 *   one-file-2 two threads, one file, each its half at its own offsets: what a second CPU gives
 *              when one file takes both (a tmpfs or ext4 write holds the file's inode lock).
 *   two-files  two threads, a file each: what two CPUs give when the lock is not shared (two
 *              tasks' pages images).
 * Wall and CPU time (this process's, all threads) in ms. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static char *mem;
static size_t size;

struct part {
	int fd;
	size_t from, to;
};

static double clock_ms(clockid_t c) {
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void *copy_part(void *arg) {
	struct part *p = arg;
	int pp[2];
	if (pipe(pp) || fcntl(pp[1], F_SETPIPE_SZ, CHUNK) < CHUNK) {
		perror("floor: pipe");
		exit(1);
	}
	for (size_t at = p->from; at < p->to; at += CHUNK) {
		struct iovec iov = {mem + at, CHUNK};
		if (vmsplice(pp[1], &iov, 1, 0) != CHUNK) {
			perror("floor: vmsplice");
			exit(1);
		}
		loff_t off = (loff_t)at;
		for (ssize_t left = CHUNK; left > 0;) {
			ssize_t n = splice(pp[0], 0, p->fd, &off, (size_t)left, 0);
			if (n <= 0) {
				perror("floor: splice");
				exit(1);
			}
			left -= n;
		}
	}
	close(pp[0]);
	close(pp[1]);
	return 0;
}

static void run(const char *dir, const char *name, int threads, int files, int report) {
	char path[4096];
	int fd[2];
	for (int i = 0; i < files; i++) {
		snprintf(path, sizeof path, "%s/floor-%d.img", dir, i);
		fd[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd[i] < 0) {
			perror("floor: open");
			exit(1);
		}
	}
	double w0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	pthread_t t[2];
	struct part p[2];
	for (int i = 0; i < threads; i++) {
		p[i] = (struct part){fd[files == 1 ? 0 : i], size / threads * i, size / threads * (i + 1)};
		pthread_create(&t[i], 0, copy_part, &p[i]);
	}
	for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
	double w1 = clock_ms(CLOCK_MONOTONIC), c1 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	for (int i = 0; i < files; i++) {
		close(fd[i]);
		snprintf(path, sizeof path, "%s/floor-%d.img", dir, i);
		unlink(path);
	}
	if (report) printf("{\"method\":\"floor-%s\",\"wall_ms\":%.0f,\"cpu_ms\":%.0f}\n", name, w1 - w0, c1 - c0);
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	size = (size_t)atol(argv[1]) << 20;
	mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) return 1;
	for (size_t i = 0; i < size; i += 8) *(uint64_t *)(mem + i) = i * 0x9E3779B97F4A7C15ull;
	/* a first pass, not reported (a first copy of freshly written memory has cost up to twice the
	 * next ones on these machines) */
	run(argv[2], "warm-up", 1, 1, 0);
	run(argv[2], "one-file", 1, 1, 1);
	run(argv[2], "one-file-2", 2, 1, 1);
	run(argv[2], "two-files", 2, 2, 1);
	return 0;
}
