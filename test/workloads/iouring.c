/* iouring STATEFILE: a process that uses io_uring through the raw system calls (no liburing):
 * a ring with a kernel submission thread (IORING_SETUP_SQPOLL: iou-sqp-PID) and NOPs sent to
 * the kernel's io worker pool (IOSQE_ASYNC: iou-wrk-PID), both listed in /proc/PID/task beside
 * the program's own thread. It keeps the ring (its descriptor and the mapped rings) and
 * submits a NOP every 20 ms. Says "ready pid=N workers:W" (W: iou-* tasks listed then); on
 * SIGUSR1 "check ok" (every NOP completed so far), else it says "check bad: ..." and exits. */
#include "workload.h"
#include <dirent.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static int ring = -1;
static struct io_uring_params p;
static void *sq, *cq;
static struct io_uring_sqe *sqes;
static size_t sq_len, cq_len, sqes_len;
static unsigned sent;

static int setup(void) {
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SQPOLL;
	p.sq_thread_idle = 10000;
	ring = (int)syscall(__NR_io_uring_setup, 8, &p);
	if (ring < 0) return -1;
	sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	cq = mmap(0, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
	sqes = mmap(0, sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return -1;
	return 0;
}

/* submit one NOP (IOSQE_ASYNC: done by an io worker) and wait up to 2 s for its completion */
static int nop(void) {
	unsigned *tail = (unsigned *)((char *)sq + p.sq_off.tail), *mask = (unsigned *)((char *)sq + p.sq_off.ring_mask);
	unsigned *array = (unsigned *)((char *)sq + p.sq_off.array), *flags = (unsigned *)((char *)sq + p.sq_off.flags);
	unsigned t = *tail, i = t & *mask;
	memset(&sqes[i], 0, sizeof sqes[i]);
	sqes[i].opcode = IORING_OP_NOP;
	sqes[i].flags = IOSQE_ASYNC;
	sqes[i].user_data = ++sent;
	array[i] = i;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP) syscall(__NR_io_uring_enter, ring, 0, 0, IORING_ENTER_SQ_WAKEUP, 0, 0);
	unsigned *head = (unsigned *)((char *)cq + p.cq_off.head), *ctail = (unsigned *)((char *)cq + p.cq_off.tail);
	for (int k = 0; k < 2000; k++) {
		if (__atomic_load_n(ctail, __ATOMIC_ACQUIRE) != *head) {
			__atomic_store_n(head, *head + 1, __ATOMIC_RELEASE);
			return 0;
		}
		usleep(1000);
	}
	return -1;
}

static int workers(void) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)getpid());
	DIR *d = opendir(path);
	if (!d) return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		char comm[64] = "", f[384];
		snprintf(f, sizeof f, "%s/%s/comm", path, e->d_name);
		FILE *c = fopen(f, "r");
		if (c) {
			if (fgets(comm, sizeof comm, c) && !strncmp(comm, "iou-", 4)) n++;
			fclose(c);
		}
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	signal(SIGUSR1, wl_on_usr1);
	if (setup() || nop()) {
		wl_say("error io_uring");
		return 1;
	}
	wl_say("ready pid=%d workers:%d", (int)getpid(), workers());
	for (;;) {
		if (nop()) {
			wl_say("check bad: a NOP did not complete");
			return 1;
		}
		usleep(20000);
		if (wl_want_check) {
			wl_want_check = 0;
			wl_say("check ok");
		}
	}
}
