/* TCP connections in every half-closed state, for the round trip of --tcp-established.
 *
 *   tcpstates tree PORT PEERPORT SYNC STATE
 *     The root listens on 127.0.0.1:PORT and [::1]:PORT and makes pairs of connected ends of its
 *     own (a peer inside the tree), each pair driven into one of the scenarios below, over IPv4
 *     (all four) and IPv6 (the first and third); then it connects five times to 127.0.0.1:PEERPORT,
 *     a peer outside the tree, and plays end `a` of each scenario there, and end `b` of the first.
 *   tcpstates peer PORT SYNC STATE
 *     The peer outside the tree: accepts five connections and plays the other end of each.
 *   tcpstates ns PORT SYNC STATE
 *     The tree's part alone, in a network namespace of its own (unshared, loopback brought up):
 *     the pairs inside, no peer outside (a restore makes the namespace anew before the
 *     connections, which must hold there as on the host until the tasks run).
 *
 * Scenarios (end a / end b), every end with small buffers:
 *   0  FIN_WAIT2 / CLOSE_WAIT   a shuts down its sending side, b acknowledges
 *   1  FIN_WAIT1 / ESTABLISHED  a fills b's receive queue and its own send queue, then shuts
 *                               down: its FIN waits behind data b does not read
 *   2  LAST_ACK / FIN_WAIT2     b shuts down first; a fills and then shuts down (FIN stuck)
 *   3  CLOSING / FIN_WAIT2      a fills and shuts down (FIN stuck), then b shuts down: its FIN
 *                               reaches a while a's own is not acknowledged (a tells b through
 *                               the SYNC file when the two ends are in different processes)
 *
 * The tree's ends of scenario 0 have TCP_NODELAY and keepalive (idle 77 s, interval 11 s, 5
 * probes) set, its b ends of scenario 1 TCP_CORK: the fingerprint holds the restore to them.
 *
 * "ready" once every end is in its state. On SIGUSR1, check 1 looks without moving anything:
 * each end's state, and whether a read would see EOF (only where the other end sent its FIN
 * and nothing is queued before it) or wait. Check 2 and later finish every connection: each
 * end that can still send writes TAIL more bytes of its stream, then shuts down; every end
 * reads everything to EOF, each byte checked in order; a reset or an error fails. The verdict
 * lists, for the connections to the outside peer, `sent/received` of this end (the test
 * matches them against the peer's). */
#include "tcpwl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <net/if.h>
#include "netdev.h"
#include <sched.h>

#define TAIL 200000
#define MAXE 32

struct end {
	int fd;
	int scen, is_a;
	int expect;               /* tcpi_state it must be in */
	int shut;                 /* this end shut down its sending side */
	int peer_fin;             /* the other end sent its FIN */
	int eof;                  /* read EOF */
	struct end *other;        /* the other end, when in this process */
	unsigned seed_out, seed_in;
	unsigned long sent, recvd, tail;
	char what[48];
};

static struct end ends[MAXE];
static int nends;
static int bad;
static char why[300];
static const char *sync_path;

static void fail(const char *fmt, const char *what, long v) {
	if (!bad) snprintf(why, sizeof why, fmt, what, v);
	bad = 1;
}


static const int A_STATE[4] = {TCP_FIN_WAIT2, TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_CLOSING};
static const int B_STATE[4] = {TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_FIN_WAIT2};

static int state_of(int fd) {
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0) return -1;
	return ti.tcpi_state;
}

static struct end *add(int fd, int scen, int is_a, unsigned seed_out, unsigned seed_in, const char *what) {
	struct end *e = &ends[nends++];
	memset(e, 0, sizeof *e);
	e->fd = fd;
	e->scen = scen;
	e->is_a = is_a;
	e->expect = is_a ? A_STATE[scen] : B_STATE[scen];
	e->peer_fin = (scen == 0 && !is_a) || (scen >= 2 && is_a);
	e->seed_out = seed_out;
	e->seed_in = seed_in;
	snprintf(e->what, sizeof e->what, "%s s%d %s", what, scen, is_a ? "a" : "b");
	return e;
}

/* Write the stream on until the kernel takes no more (or `limit` more bytes were written). */
static void fill(struct end *e, unsigned long limit) {
	long err = wl_stream_fill(e->fd, e->seed_out, &e->sent, limit ? e->sent + limit : 0);
	if (err) fail("%s: send failed (errno %ld)", e->what, err);
}

/* Read what is there, each byte checked; EOF noted (an error or reset fails). */
static void drain(struct end *e) {
	unsigned char buf[4096];
	while (!e->eof) {
		ssize_t r = recv(e->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR) fail("%s: recv failed (errno %ld)", e->what, errno);
			return;
		}
		if (r == 0) {
			e->eof = 1;
			return;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != wl_pattern(e->seed_in, e->recvd + i)) {
				fail("%s: wrong byte at %ld", e->what, (long)(e->recvd + i));
				return;
			}
		e->recvd += (unsigned long)r;
	}
}

static void do_shutdown(struct end *e) {
	if (shutdown(e->fd, SHUT_WR) < 0) fail("%s: shutdown failed (errno %ld)", e->what, errno);
	e->shut = 1;
}

/* Wait (5 s at most) until the end is in state s. */
static void wait_state(struct end *e, int s) {
	for (int i = 0; i < 500; i++) {
		if (state_of(e->fd) == s) return;
		usleep(10000);
	}
	fail("%s: never reached state %ld", e->what, s);
}

static void sync_tell(int scen) {
	FILE *f = fopen(sync_path, "w");
	if (f) fprintf(f, "fin %d\n", scen), fclose(f);
}

static void sync_wait(void) {
	for (int i = 0; i < 500; i++) {
		char line[32] = "";
		FILE *f = fopen(sync_path, "r");
		if (f) {
			if (!fgets(line, sizeof line, f)) line[0] = 0;
			fclose(f);
		}
		if (!strncmp(line, "fin", 3)) {
			unlink(sync_path);
			return;
		}
		usleep(10000);
	}
	fail("%s: no word through the sync file (%ld)", "sync", 0);
}

/* One end's part of its scenario (b: the other end, when it is in this process too). */
static void play(struct end *e, struct end *b) {
	switch (e->scen) {
	case 0:
		if (e->is_a) do_shutdown(e), wait_state(e, TCP_FIN_WAIT2);
		else wait_state(e, TCP_CLOSE_WAIT);
		break;
	case 1:
		if (e->is_a) fill(e, 0), do_shutdown(e), wait_state(e, TCP_FIN_WAIT1);
		break;
	case 2:
		if (e->is_a) wait_state(e, TCP_CLOSE_WAIT), fill(e, 0), do_shutdown(e), wait_state(e, TCP_LAST_ACK);
		else do_shutdown(e), wait_state(e, TCP_FIN_WAIT2);
		break;
	case 3:
		if (e->is_a) {
			fill(e, 0), do_shutdown(e), wait_state(e, TCP_FIN_WAIT1);
			if (b) do_shutdown(b);
			else sync_tell(3);
			wait_state(e, TCP_CLOSING);
		} else if (!e->other) {
			sync_wait(), do_shutdown(e), wait_state(e, TCP_FIN_WAIT2);
		}
		break;
	}
}

/* Check 1: every end in its state; EOF visible exactly where the other end's FIN is next to read. */
static void look(void) {
	for (int i = 0; i < nends && !bad; i++) {
		struct end *e = &ends[i];
		int s = state_of(e->fd);
		if (s != e->expect) {
			fail("%s: in state %ld", e->what, s);
			break;
		}
		int inq = 0;
		if (ioctl(e->fd, FIONREAD, &inq) < 0) fail("%s: FIONREAD failed (errno %ld)", e->what, errno);
		if (inq) continue;
		char c;
		ssize_t r = recv(e->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (e->peer_fin && r != 0) fail("%s: no EOF to read (%ld)", e->what, r < 0 ? -errno : r);
		if (!e->peer_fin && !(r < 0 && errno == EAGAIN)) fail("%s: a read does not wait (%ld)", e->what, r < 0 ? -errno : r);
	}
}

/* Check 2: every connection finished (tails written, everything read to EOF), 60 s at most (a peer that backed off while locked retransmits on its own timer). */
static void finish(void) {
	for (int i = 0; i < nends; i++) {
		int fl = fcntl(ends[i].fd, F_GETFL);
		fcntl(ends[i].fd, F_SETFL, fl | O_NONBLOCK);
	}
	for (int round = 0; round < 6000 && !bad; round++) {
		int pending = 0;
		for (int i = 0; i < nends; i++) {
			struct end *e = &ends[i];
			if (!e->shut) {
				unsigned long before = e->sent;
				if (e->tail < TAIL) fill(e, TAIL - e->tail);
				e->tail += e->sent - before;
				if (e->tail >= TAIL) do_shutdown(e);
			}
			drain(e);
			if (!e->shut || !e->eof) pending++;
		}
		if (!pending) break;
		usleep(10000);
	}
	for (int i = 0; i < nends && !bad; i++) {
		struct end *e = &ends[i];
		if (!e->eof) fail("%s: no EOF after %ld bytes", e->what, (long)e->recvd);
		else if (e->other && e->recvd != e->other->sent) fail("%s: received %ld bytes", e->what, (long)e->recvd);
	}
}

static void verdict(int k) {
	if (bad) {
		wl_say("check bad k=%d %s", k, why);
		return;
	}
	char list[1024] = "";
	size_t n = 0;
	for (int i = 0; i < nends; i++)
		if (!ends[i].other) n += snprintf(list + n, sizeof list - n, " %lu/%lu", ends[i].sent, ends[i].recvd);
	wl_say("check ok k=%d%s", k, k >= 2 ? list : "");
}

static void serve(void) {
	for (int k = 1;; k++) {
		wl_wait_check();
		if (k == 1) look();
		else if (k == 2) finish();
		verdict(k);
	}
}

/* the roles of the five connections to the outside peer, in connection order: scenario, tree end is a */
static const int OUT_SCEN[5] = {0, 0, 1, 2, 3};
static const int OUT_TREE_A[5] = {1, 0, 1, 1, 1};

static int run_tree(int port, int peerport) {
	int l4 = wl_tcp_listener(AF_INET, "127.0.0.1", port, 1, 16), l6 = wl_tcp_listener(AF_INET6, "::1", port, 1, 16);
	/* pairs inside the tree: IPv4 scenarios 0-3, IPv6 scenarios 0 and 2 */
	const int scen[6] = {0, 1, 2, 3, 0, 2};
	for (int i = 0; i < 6; i++) {
		int v6 = i >= 4;
		int c = wl_tcp_connect(v6 ? AF_INET6 : AF_INET, v6 ? "::1" : "127.0.0.1", port);
		int s = accept(v6 ? l6 : l4, 0, 0);
		if (s < 0) return 1;
		struct end *a = add(c, scen[i], 1, 10 + 2 * i, 11 + 2 * i, v6 ? "tree v6" : "tree v4");
		struct end *b = add(s, scen[i], 0, 11 + 2 * i, 10 + 2 * i, v6 ? "tree v6" : "tree v4");
		a->other = b, b->other = a;
	}
	close(l4);
	close(l6);
	for (int i = 0; i < 5 && peerport; i++) {
		int c = wl_tcp_connect(AF_INET, "127.0.0.1", peerport);
		int a = OUT_TREE_A[i];
		add(c, OUT_SCEN[i], a, a ? 50 + 2 * i : 51 + 2 * i, a ? 51 + 2 * i : 50 + 2 * i, "outside");
	}
	/* options the restore must carry (tcp_opts): TCP_NODELAY and keepalive on a FIN_WAIT2 and a
	 * CLOSE_WAIT end, TCP_CORK on an end that only receives */
	for (int i = 0; i < nends; i++) {
		struct end *e = &ends[i];
		if (e->scen == 0) {
			int one = 1, idle = 77, intvl = 11, cnt = 5;
			setsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			setsockopt(e->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
			setsockopt(e->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
			setsockopt(e->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
			setsockopt(e->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
		}
		if (e->scen == 1 && !e->is_a) {
			int one = 1;
			setsockopt(e->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
		}
	}
	/* a pair inside: b first where it moves first (2), a drives b where b must wait for it (3) */
	for (int i = 0; i < 12; i += 2) {
		struct end *a = &ends[i], *b = &ends[i + 1];
		if (a->scen == 2) play(b, 0);
		play(a, b);
		if (a->scen == 0) play(b, 0);
	}
	for (int i = 12; i < nends; i++) play(&ends[i], 0);
	for (int i = 0; i < 12; i++)
		if (ends[i].is_a && ends[i].scen >= 2) wait_state(ends[i].other, TCP_FIN_WAIT2);
	if (bad) wl_say("failed %s", why);
	else wl_say("ready pid=%d", (int)getpid());
	serve();
	return 0;
}

static int run_peer(int port) {
	int l = wl_tcp_listener(AF_INET, "127.0.0.1", port, 1, 16);
	wl_say("listening pid=%d", (int)getpid());
	for (int i = 0; i < 5; i++) {
		int s = accept(l, 0, 0);
		if (s < 0) return 1;
		int a = !OUT_TREE_A[i];
		add(s, OUT_SCEN[i], a, a ? 50 + 2 * i : 51 + 2 * i, a ? 51 + 2 * i : 50 + 2 * i, "peer");
	}
	close(l);
	for (int i = 0; i < nends; i++) play(&ends[i], 0);
	if (bad) wl_say("failed %s", why);
	else wl_say("ready pid=%d", (int)getpid());
	serve();
	return 0;
}

/* a network namespace of this process's own, its loopback up */
static int own_netns(void) {
	return unshare(CLONE_NEWNET) ? -1 : wl_lo_up();
}

int main(int argc, char **argv) {
	if (argc == 5 && !strcmp(argv[1], "ns")) {
		wl_detach(argv[4]);
		wl_handle_usr1();
		sync_path = argv[3];
		if (own_netns()) {
			wl_say("error netns");
			return 1;
		}
		return run_tree(atoi(argv[2]), 0);
	}
	if (argc == 5 && !strcmp(argv[1], "peer")) {
		wl_detach(argv[4]);
		wl_handle_usr1();
		sync_path = argv[3];
		return run_peer(atoi(argv[2]));
	}
	if (argc == 6 && !strcmp(argv[1], "tree")) {
		wl_detach(argv[5]);
		wl_handle_usr1();
		sync_path = argv[4];
		return run_tree(atoi(argv[2]), atoi(argv[3]));
	}
	fprintf(stderr, "usage: tcpstates tree PORT PEERPORT SYNC STATE | tcpstates peer PORT SYNC STATE | tcpstates ns PORT SYNC STATE\n");
	return 2;
}
