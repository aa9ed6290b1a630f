/* AIO rings (io_setup), for issue 15: raw system calls, no libaio.
 *
 *   aiorings rings STATE
 *     Ring A (io_setup 8) gets 5 writes to /dev/null submitted (each completes at once) and 2
 *     of their events reaped: 3 completed events wait in it, head and tail away from 0. Ring B
 *     (io_setup 64) has had nothing submitted. "ready" once so.
 *     On SIGUSR1: each ring is still at its address (the context id is the ring's address), its
 *     header as before (nr, head, tail); A's 3 waiting events are read (their data 103, 104,
 *     105, each result 1 byte) and the ring goes on: writes submitted to A and B complete and are
 *     reaped; then A is put back as it was found (5 writes, 2 reaped: 3 events waiting, ring
 *     turned further), ready for the next round. The verdict names the first difference.
 *   aiorings fork STATE
 *     A ring set up, then a child forked: the child maps the ring's area without its context
 *     (refused by name by the dump). */
#include "workload.h"

#include <errno.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, header;
};

static int devnull;
static int bad;
static char why[300];

static void fail(const char *fmt, long a, long b) {
	if (bad++) return;
	snprintf(why, sizeof why, fmt, a, b);
}

static long io_setup_(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_submit_(aio_context_t ctx, long n, struct iocb **p) { return syscall(SYS_io_submit, ctx, n, p); }
static long io_getevents_(aio_context_t ctx, long min, long max, struct io_event *ev, struct timespec *t) {
	return syscall(SYS_io_getevents, ctx, min, max, ev, t);
}

/* submit n one-byte writes to /dev/null carrying data first, first+1, ... */
static void submit(aio_context_t ctx, int n, unsigned long first) {
	static char byte = 'x';
	struct iocb cb[16], *p[16];
	for (int i = 0; i < n; i++) {
		memset(&cb[i], 0, sizeof cb[i]);
		cb[i].aio_data = first + i;
		cb[i].aio_lio_opcode = IOCB_CMD_PWRITE;
		cb[i].aio_fildes = devnull;
		cb[i].aio_buf = (uintptr_t)&byte;
		cb[i].aio_nbytes = 1;
		p[i] = &cb[i];
	}
	long r = io_submit_(ctx, n, p);
	if (r != n) fail("io_submit gave %ld of %ld", r < 0 ? -errno : r, n);
}

/* reap exactly n events, the first with data `first`, in order */
static void reap(aio_context_t ctx, int n, unsigned long first, const char *what) {
	struct io_event ev[16];
	struct timespec t = { 2, 0 };
	long r = io_getevents_(ctx, n, n, ev, &t);
	if (r != n) {
		fail(what[0] == 'A' ? "ring A: io_getevents gave %ld of %ld" : "ring B: io_getevents gave %ld of %ld", r < 0 ? -errno : r, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (ev[i].data != first + i || ev[i].res != 1) fail("event data %ld res %ld", (long)ev[i].data, (long)ev[i].res);
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	wl_detach(argv[2]);
	wl_handle_usr1();
	devnull = open("/dev/null", O_WRONLY);
	aio_context_t a = 0, b = 0;
	if (io_setup_(8, &a) < 0 || io_setup_(64, &b) < 0) return 1;
	if (!strcmp(argv[1], "fork")) {
		if (fork() == 0)
			for (;;) pause();
		wl_say("ready pid=%d", (int)getpid());
		for (;;) pause();
	}
	submit(a, 5, 101);
	reap(a, 2, 101, "A");
	if (bad) return 1;
	struct ring *ra = (struct ring *)a, *rb = (struct ring *)b;
	struct ring sa = *ra, sb = *rb;
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		bad = 0;
		if (ra->nr != sa.nr || ra->head != sa.head || ra->tail != sa.tail) fail("ring A header: head %ld tail %ld", ra->head, ra->tail);
		if (rb->nr != sb.nr || rb->head != sb.head || rb->tail != sb.tail) fail("ring B header: head %ld tail %ld", rb->head, rb->tail);
		reap(a, 3, 103, "A");
		submit(a, 4, 201);
		reap(a, 4, 201, "A");
		submit(b, 2, 301);
		reap(b, 2, 301, "B");
		/* as found: 5 writes, 2 reaped */
		submit(a, 5, 101);
		reap(a, 2, 101, "A");
		sa = *ra;
		sb = *rb;
		if (bad) wl_say("check bad %s", why);
		else wl_say("check ok");
	}
}
