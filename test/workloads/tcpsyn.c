/* TCP connects under way (issue 15): sockets in SYN_SENT whose connect goes on after a restore.
 *
 *   tcpsyn peer STATE
 *     Outside the tree: listeners on 127.0.0.1 and [::1] (ports the kernel picks, IPv6 one not
 *     v6-only) with a backlog of 0, each holding a connection of its own not accepted: their
 *     accept queues are full, so the kernel drops the SYNs that come in (no answer, no reset).
 *     Says "ready pid=N p4=PORT p6=PORT". On SIGUSR1 it opens: the backlogs grow (listen again),
 *     the connections of its own are accepted, "check ok open"; from then on every connection
 *     that comes is accepted and what it sends echoed back.
 *   tcpsyn conn P4 P6 [blocking] STATE
 *     The tree: three non-blocking connects, each left in SYN_SENT (its SYN dropped by the full
 *     listener): an IPv4 socket to 127.0.0.1:P4, an IPv6 one to [::1]:P6 and an IPv6 one to
 *     [::ffff:127.0.0.1]:P4 (v4-mapped); with "blocking", a fourth, IPv4 to P4, a blocking
 *     connect(2) a thread of its own is in (it counts as connected once that returned 0).
 *     TCP_NODELAY set on the first. "ready" once all are connecting. On SIGUSR1 it checks, each
 *     socket: one not writable yet (the blocking one: whose connect has not returned) is in
 *     SYN_SENT, non-blocking or not as made, at its local port, SO_PEERNAME its target, no error
 *     pending; one writable has connected (SO_ERROR 0, ESTABLISHED, getpeername its target, at
 *     its local port) and a message sent on it comes back (the peer echoes). "check ok
 *     connecting N" (N connected so far) until all are, then "check ok connected"; "check bad
 *     <what>" otherwise.
 */
#include "tcpwl.h"

#include <poll.h>
#include <pthread.h>

static int bad;
static char why[300];

static void fail(const char *fmt, const char *what, long v) {
	if (bad++) return;
	snprintf(why, sizeof why, fmt, what, v);
}

/* the peer: full listeners until SIGUSR1, then an echo server */
static int peer(void) {
	int l[2], own[2];
	l[0] = wl_tcp_listener(AF_INET, "127.0.0.1", 0, 0, 0);
	l[1] = wl_tcp_listener(AF_INET6, "::1", 0, 0, 0);
	own[0] = wl_tcp_connect(AF_INET, "127.0.0.1", wl_local_port(l[0]));
	own[1] = wl_tcp_connect(AF_INET6, "::1", wl_local_port(l[1]));
	(void)own;
	wl_say("ready pid=%d p4=%d p6=%d", (int)getpid(), wl_local_port(l[0]), wl_local_port(l[1]));
	wl_wait_check();
	for (int i = 0; i < 2; i++) {
		if (listen(l[i], 16) < 0) return 1;
		int a = accept(l[i], 0, 0);
		if (a < 0) return 1;
		close(a);
	}
	wl_say("check ok open");
	struct pollfd p[64];
	int n = 2;
	for (int i = 0; i < 2; i++) p[i] = (struct pollfd){ l[i], POLLIN, 0 };
	for (;;) {
		if (poll(p, n, -1) < 0) continue;
		for (int i = 0; i < n; i++) {
			if (!p[i].revents) continue;
			if (i < 2) {
				int a = accept(l[i], 0, 0);
				if (a >= 0 && n < 64) p[n++] = (struct pollfd){ a, POLLIN, 0 };
				continue;
			}
			char buf[256];
			ssize_t r = read(p[i].fd, buf, sizeof buf);
			if (r > 0 && write(p[i].fd, buf, r) == r) continue;
			close(p[i].fd);
			p[i--] = p[--n];
		}
	}
}

struct conn {
	const char *what;
	int fd, family, port, local;
	const char *host;
	int connected;
	/* a blocking connect, made by a thread of its own: done once connect(2) returned, with rc and err */
	int blocking;
	volatile int done, rc, err;
};

static void *connector(void *arg) {
	struct conn *c = arg;
	struct sockaddr_storage ss;
	socklen_t len = wl_inet_addr(c->family, c->host, c->port, &ss);
	int rc = connect(c->fd, (struct sockaddr *)&ss, len);
	c->err = rc ? errno : 0;
	c->rc = rc;
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* the target of c as a sockaddr equals sa */
static int same_target(struct conn *c, struct sockaddr_storage *sa, socklen_t len) {
	struct sockaddr_storage want;
	socklen_t wl = wl_inet_addr(c->family, c->host, c->port, &want);
	return len >= wl && !memcmp(&want, sa, c->family == AF_INET ? 8 : 24);
}

static void check(struct conn *c) {
	int err = -1;
	socklen_t l = sizeof err;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	if (wl_local_port(c->fd) != c->local) fail("%s: at port %ld", c->what, wl_local_port(c->fd));
	int nonblocking = (fcntl(c->fd, F_GETFL) & O_NONBLOCK) != 0;
	if (nonblocking == c->blocking) fail("%s: O_NONBLOCK not as made (flags %lo)", c->what, (long)fcntl(c->fd, F_GETFL));
	struct pollfd p = { c->fd, POLLOUT, 0 };
	if (poll(&p, 1, 0) < 0) fail("%s: poll %ld", c->what, -errno);
	if (c->blocking ? !__atomic_load_n(&c->done, __ATOMIC_SEQ_CST) : !(p.revents & (POLLOUT | POLLERR | POLLHUP))) {
		/* still connecting */
		if (wl_tcp_state(c->fd) != 2) fail("%s: state %ld, not SYN_SENT", c->what, wl_tcp_state(c->fd));
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) fail("%s: SO_ERROR %ld", c->what, err);
		/* (asked for no more than the family's address: the kernel refuses a longer buffer) */
		sl = c->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERNAME, &sa, &sl) < 0 || !same_target(c, &sa, sl)) fail("%s: SO_PEERNAME is not its target (%ld)", c->what, -errno);
		return;
	}
	if (c->blocking && c->rc) {
		fail("%s: its connect returned errno %ld", c->what, c->err);
		return;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
		fail("%s: its connect failed (SO_ERROR %ld)", c->what, err);
		return;
	}
	if (wl_tcp_state(c->fd) != 1) fail("%s: state %ld, not ESTABLISHED", c->what, wl_tcp_state(c->fd));
	if (getpeername(c->fd, (struct sockaddr *)&sa, &sl) < 0 || !same_target(c, &sa, sl)) fail("%s: getpeername is not its target (%ld)", c->what, -errno);
	char msg[32], back[32];
	int n = snprintf(msg, sizeof msg, "hello %s", c->what);
	if (send(c->fd, msg, n, MSG_NOSIGNAL) != n) fail("%s: send %ld", c->what, -errno);
	int got = 0;
	for (int i = 0; i < 500 && got < n; i++) {
		ssize_t r = recv(c->fd, back + got, n - got, 0);
		if (r > 0) got += r;
		else if (r == 0) break;
		else usleep(10000);
	}
	if (got != n || memcmp(msg, back, n)) fail("%s: the echo came back with %ld bytes", c->what, got);
	c->connected = 1;
}

int main(int argc, char **argv) {
	if (argc == 3 && !strcmp(argv[1], "peer")) {
		wl_detach(argv[2]);
		wl_handle_usr1();
		return peer();
	}
	int blocking = argc == 6 && !strcmp(argv[4], "blocking");
	if (argc != 5 + blocking || strcmp(argv[1], "conn")) return 2;
	int p4 = atoi(argv[2]), p6 = atoi(argv[3]), nc = 3 + blocking;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();
	struct conn c[4] = {
		{ "v4", -1, AF_INET, p4, 0, "127.0.0.1", 0, 0, 0, 0, 0 },
		{ "v6", -1, AF_INET6, p6, 0, "::1", 0, 0, 0, 0, 0 },
		{ "mapped", -1, AF_INET6, p4, 0, "::ffff:127.0.0.1", 0, 0, 0, 0, 0 },
		{ "blocking", -1, AF_INET, p4, 0, "127.0.0.1", 0, 1, 0, 0, 0 },
	};
	int one = 1;
	for (int i = 0; i < 3; i++) {
		c[i].fd = socket(c[i].family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_storage ss;
		socklen_t len = wl_inet_addr(c[i].family, c[i].host, c[i].port, &ss);
		if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *)&ss, len) == 0 || errno != EINPROGRESS) return 1;
		c[i].local = wl_local_port(c[i].fd);
	}
	if (blocking) {
		pthread_t t;
		if ((c[3].fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || pthread_create(&t, 0, connector, &c[3])) return 1;
	}
	setsockopt(c[0].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (int t = 0; t < 100; t++) {
		int n = 0;
		for (int i = 0; i < nc; i++) n += wl_tcp_state(c[i].fd) == 2;
		if (n == nc) break;
		usleep(10000);
	}
	for (int i = 0; i < nc; i++)
		if (wl_tcp_state(c[i].fd) != 2) return 1;
	if (blocking) c[3].local = wl_local_port(c[3].fd);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		bad = 0;
		int n = 0;
		for (int i = 0; i < nc; i++) {
			check(&c[i]);
			n += c[i].connected;
		}
		if (bad) wl_say("check bad %s", why);
		else if (n == nc) wl_say("check ok connected");
		else wl_say("check ok connecting %d", n);
	}
}
