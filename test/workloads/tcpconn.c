/* TCP connections with data queued both ways.
 *
 *   tcpconn tree PORT4 PORT6 PORTM PEERPORT STATE
 *     The root listens on 127.0.0.1:PORT4, [::1]:PORT6 (IPv6 only) and [::]:PORTM (both
 *     families); its child connects to each (the last through 127.0.0.1: a v4-mapped
 *     connection), and the root also connects to 127.0.0.1:PEERPORT, a peer outside the tree.
 *   tcpconn peer PORT STATE
 *     The peer outside the tree: accepts one connection on 127.0.0.1:PORT.
 *
 * Every end writes a stream whose byte at position i is known (wl_pattern()) until the kernel
 * takes no more (small buffers: the receive queue full, the send queue holding data sent and
 * not sent), and nobody reads: "ready". On SIGUSR1 (check k, k = 1, 2, ...) every end pumps,
 * reading and checking each byte in order, until it has sent and received k MiB; then it
 * fills the queues again and gives its verdict (the root with its child's, through a pipe). */
#include "tcpwl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define STEP (1 << 20)
#define MAXC 4

struct conn {
	int fd;
	unsigned seed_out, seed_in; /* pattern of what this end sends / receives */
	unsigned long sent, recvd;
	char what[32];
};


static int bad; /* first error, reported in the verdict */
static char why[256];

static void fail(const char *fmt, const char *what, unsigned long v) {
	if (!bad) snprintf(why, sizeof why, fmt, what, v);
	bad = 1;
}

/* Write the stream on until the kernel takes no more (or `limit` is reached). */
static void fill(struct conn *c, unsigned long limit) {
	if (wl_stream_fill(c->fd, c->seed_out, &c->sent, limit)) fail("%s: send failed at %lu", c->what, c->sent);
}

/* Read what is there, each byte checked against the stream at its position. */
static void drain(struct conn *c) {
	unsigned char buf[4096];
	for (;;) {
		ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR) fail("%s: recv failed at %lu", c->what, c->recvd);
			return;
		}
		if (r == 0) {
			fail("%s: the peer closed at %lu", c->what, c->recvd);
			return;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != wl_pattern(c->seed_in, c->recvd + i)) {
				fail("%s: wrong byte at %lu", c->what, c->recvd + i);
				return;
			}
		c->recvd += (unsigned long)r;
	}
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Check k: every connection sends and receives k MiB (10 s at most: over loopback a MiB takes
 * milliseconds; a connection restored with segments too large for its peer's window crawls by
 * zero-window probes, 1 MiB in 20 s), then fills its queues again. */
static void pump(struct conn *cs, int n, int k) {
	unsigned long goal = (unsigned long)k * STEP;
	double end = now() + 10;
	while (now() < end && !bad) {
		struct pollfd p[MAXC];
		int pending = 0;
		for (int i = 0; i < n; i++) {
			p[i].fd = cs[i].fd;
			p[i].events = (cs[i].recvd < goal ? POLLIN : 0) | (cs[i].sent < goal ? POLLOUT : 0);
			if (p[i].events) pending++;
		}
		if (!pending) break;
		poll(p, n, 1000);
		for (int i = 0; i < n; i++) {
			if (cs[i].sent < goal) fill(&cs[i], goal);
			drain(&cs[i]);
		}
	}
	for (int i = 0; i < n && !bad; i++)
		if (cs[i].recvd < goal || cs[i].sent < goal) fail("%s: stalled at %lu", cs[i].what, cs[i].recvd);
	for (int i = 0; i < n; i++) fill(&cs[i], 0);
}

static void init(struct conn *c, int fd, unsigned out, unsigned in, const char *what) {
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->seed_out = out;
	c->seed_in = in;
	snprintf(c->what, sizeof c->what, "%s", what);
}

static void verdict(int k, const char *child) {
	if (bad) wl_say("check bad k=%d %s", k, why);
	else if (child && strncmp(child, "ok", 2)) wl_say("check bad k=%d child: %s", k, child);
	else wl_say("check ok k=%d", k);
}

static void run_peer(int port) {
	int l = wl_tcp_listener(AF_INET, "127.0.0.1", port, 0, 8);
	wl_say("listening pid=%d", (int)getpid());
	int fd = accept(l, 0, 0);
	close(l);
	struct conn c;
	init(&c, fd, 7, 8, "outside");
	fill(&c, 0);
	wl_say("ready pid=%d sent=%lu", (int)getpid(), c.sent);
	for (int k = 1;; k++) {
		wl_wait_check();
		pump(&c, 1, k);
		verdict(k, 0);
	}
}

static int run_tree(int p4, int p6, int pm, int peer) {
	int l4 = wl_tcp_listener(AF_INET, "127.0.0.1", p4, 0, 8);
	int l6 = wl_tcp_listener(AF_INET6, "::1", p6, 1, 8);
	int lm = wl_tcp_listener(AF_INET6, "::", pm, 0, 8);
	int up[2], down[2]; /* child -> root: "filled" and verdicts; root -> child: check k */
	if (pipe(up) < 0 || pipe(down) < 0) return 1;
	pid_t child = fork();
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		struct conn cs[3];
		init(&cs[0], wl_tcp_connect(AF_INET, "127.0.0.1", p4), 1, 2, "child v4");
		init(&cs[1], wl_tcp_connect(AF_INET6, "::1", p6), 3, 4, "child v6");
		init(&cs[2], wl_tcp_connect(AF_INET, "127.0.0.1", pm), 5, 6, "child mapped");
		for (int i = 0; i < 3; i++) fill(&cs[i], 0);
		if (write(up[1], "f", 1) != 1) _exit(1);
		for (;;) {
			int k;
			if (read(down[0], &k, sizeof k) != sizeof k) _exit(0);
			pump(cs, 3, k);
			char line[300];
			snprintf(line, sizeof line, "%s", bad ? why : "ok");
			if (write(up[1], line, strlen(line) + 1) < 0) _exit(1);
		}
	}
	close(up[1]);
	close(down[0]);
	struct conn cs[4];
	init(&cs[0], accept(l4, 0, 0), 2, 1, "root v4");
	init(&cs[1], accept(l6, 0, 0), 4, 3, "root v6");
	init(&cs[2], accept(lm, 0, 0), 6, 5, "root mapped");
	init(&cs[3], wl_tcp_connect(AF_INET, "127.0.0.1", peer), 8, 7, "root outside");
	for (int i = 0; i < 4; i++) fill(&cs[i], 0);
	char f;
	if (read(up[0], &f, 1) != 1) return 1;
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (int k = 1;; k++) {
		wl_wait_check();
		if (write(down[1], &k, sizeof k) != sizeof k) return 1;
		pump(cs, 4, k);
		char line[300];
		size_t n = 0;
		while (n < sizeof line - 1 && read(up[0], &line[n], 1) == 1 && line[n]) n++;
		line[n] = 0;
		verdict(k, line);
	}
}

int main(int argc, char **argv) {
	if (argc == 4 && !strcmp(argv[1], "peer")) {
		wl_detach(argv[3]);
		wl_handle_usr1();
		run_peer(atoi(argv[2]));
	}
	if (argc == 7 && !strcmp(argv[1], "tree")) {
		wl_detach(argv[6]);
		wl_handle_usr1();
		return run_tree(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	}
	fprintf(stderr, "usage: tcpconn tree PORT4 PORT6 PORTM PEERPORT STATE | tcpconn peer PORT STATE\n");
	return 2;
}
