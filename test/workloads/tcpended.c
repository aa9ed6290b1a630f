/* TCP sockets with no connection going on (issue 15): connections that ended while held, and
 * sockets never connected.
 *
 *   tcpended ended STATE
 *     The root listens on 127.0.0.1 and [::1] (ports the kernel picks) and holds:
 *       c4  the client end of a connection to itself that ended, closed first (its FIN, then
 *           the peer's: CLOSE once TIME_WAIT took the connection over), TCP_NODELAY set;
 *       s4  that connection's accepted end (closed second: LAST_ACK, then CLOSE), on the
 *           listener's port;
 *       c6  the client end of an IPv6 connection the root's accepted end closed first (the
 *           accepted end then closed: c6 gets the FIN, shuts down, CLOSE);
 *       b   a socket bound to 127.0.0.1 (a port the kernel picks), never connected, keepalive;
 *       u   a socket neither bound nor connected, its receiving side shut (shutdown SHUT_RD).
 *     "ready" once all are so. On SIGUSR1 it checks, without changing anything: the ended ends
 *     are in CLOSE, at their addresses, their peers' kept (SO_PEERNAME), a read says EOF at once, a write EPIPE; b is at its
 *     address, a read says ENOTCONN; u is unbound and a read says EOF; TCP_NODELAY and
 *     keepalive as set; then a new connection to each listener is accepted (and closed).
 *   tcpended alone STATE
 *     The same with the listeners closed once the connections ended and c4's connection closed
 *     by s4 first: no socket holds the address of an end in CLOSE, neither a listener nor the
 *     TIME_WAIT of the end that closed first (CRIU 4.2 binds such a socket without repair mode,
 *     where either makes the bind fail with EADDRINUSE).
 *   tcpended refused STATE
 *     A socket whose connect was refused (a port nobody listens on; the error taken by connect):
 *     CLOSE with a connection's segment size, refused by name by the dump.
 *
 * The verdict: "check ok" or "check bad <what>". */
#include "tcpwl.h"


static int bad;
static char why[300];

static void fail(const char *fmt, const char *what, long v) {
	if (bad++) return;
	snprintf(why, sizeof why, fmt, what, v);
}

static int opt(int fd, int level, int name) {
	int v = -1;
	socklen_t l = sizeof v;
	getsockopt(fd, level, name, &v, &l);
	return v;
}

/* the port of the peer a socket keeps after its connection ended (SO_PEERNAME; getpeername
   says ENOTCONN in CLOSE), -errno when it has none */
static long peer_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	/* (SO_PEERNAME wants no more room than the address takes: the family's size) */
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) return -errno;
	l = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &ss, &l) < 0) return -errno;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

/* one end that ended: CLOSE, at its port, its peer's port kept, EOF on read, EPIPE on write */
static void check_ended(const char *what, int fd, int port, int peer) {
	char c;
	if (wl_tcp_state(fd) != 7) fail("%s: state %ld, not CLOSE", what, wl_tcp_state(fd));
	if (wl_local_port(fd) != port) fail("%s: at port %ld", what, wl_local_port(fd));
	if (peer_port(fd) != peer) fail("%s: its peer at port %ld", what, peer_port(fd));
	long r = recv(fd, &c, 1, MSG_DONTWAIT);
	if (r != 0) fail("%s: a read gives %ld, not EOF", what, r < 0 ? -errno : r);
	r = send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (!(r < 0 && errno == EPIPE)) fail("%s: a write gives %ld, not EPIPE", what, r < 0 ? -errno : r);
}

/* a new connection to the listener at port is accepted */
static void check_listener(const char *what, int family, const char *host, int l, int port) {
	int c = socket(family, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t len = wl_inet_addr(family, host, port, &ss);
	if (connect(c, (struct sockaddr *)&ss, len) < 0) fail("%s: connect gives %ld", what, -errno);
	int a = accept(l, 0, 0);
	if (a < 0) fail("%s: accept gives %ld", what, -errno);
	close(a);
	close(c);
}

/* end a connection from family/host to the listener l at port: first closes first */
static void ended(int family, const char *host, int l, int port, int client_first, int *cl, int *srv) {
	char c;
	*cl = wl_tcp_connect(family, host, port);
	*srv = accept(l, 0, 0);
	if (*srv < 0) exit(1);
	int first = client_first ? *cl : *srv, second = client_first ? *srv : *cl;
	shutdown(first, SHUT_WR);
	if (read(second, &c, 1) != 0) exit(1);
	shutdown(second, SHUT_WR);
	if (read(first, &c, 1) != 0) exit(1);
	for (int i = 0; i < 200 && (wl_tcp_state(*cl) != 7 || wl_tcp_state(*srv) != 7); i++) usleep(10000);
	if (wl_tcp_state(*cl) != 7 || wl_tcp_state(*srv) != 7) exit(1);
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	wl_detach(argv[2]);
	wl_handle_usr1();
	int alone = !strcmp(argv[1], "alone");
	if (!strcmp(argv[1], "refused")) {
		int l = wl_tcp_listener(AF_INET, "127.0.0.1", 0, 0, 0), port = wl_local_port(l);
		close(l);
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_storage ss;
		socklen_t len = wl_inet_addr(AF_INET, "127.0.0.1", port, &ss);
		if (connect(s, (struct sockaddr *)&ss, len) == 0 || errno != ECONNREFUSED) return 1;
		wl_say("ready pid=%d", (int)getpid());
		for (;;) pause();
	}
	int l4 = wl_tcp_listener(AF_INET, "127.0.0.1", 0, 0, 8), p4 = wl_local_port(l4);
	int l6 = wl_tcp_listener(AF_INET6, "::1", 0, 1, 8), p6 = wl_local_port(l6);
	int c4, s4, c6, s6, one = 1;
	ended(AF_INET, "127.0.0.1", l4, p4, !alone, &c4, &s4);
	setsockopt(c4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	ended(AF_INET6, "::1", l6, p6, 0, &c6, &s6);
	close(s6);
	if (alone) {
		close(l4);
		close(l6);
	}
	int b = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t len = wl_inet_addr(AF_INET, "127.0.0.1", 0, &ss);
	if (bind(b, (struct sockaddr *)&ss, len) < 0) return 1;
	setsockopt(b, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	shutdown(u, SHUT_RD);
	int pc4 = wl_local_port(c4), pc6 = wl_local_port(c6), pb = wl_local_port(b);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		bad = 0;
		char c;
		check_ended("c4", c4, pc4, p4);
		check_ended("s4", s4, p4, pc4);
		check_ended("c6", c6, pc6, p6);
		if (opt(c4, IPPROTO_TCP, TCP_NODELAY) != 1) fail("%s: TCP_NODELAY %ld", "c4", opt(c4, IPPROTO_TCP, TCP_NODELAY));
		if (wl_local_port(b) != pb) fail("%s: at port %ld", "b", wl_local_port(b));
		if (opt(b, SOL_SOCKET, SO_KEEPALIVE) != 1) fail("%s: SO_KEEPALIVE %ld", "b", opt(b, SOL_SOCKET, SO_KEEPALIVE));
		long r = recv(b, &c, 1, MSG_DONTWAIT);
		if (!(r < 0 && errno == ENOTCONN)) fail("%s: a read gives %ld, not ENOTCONN", "b", r < 0 ? -errno : r);
		if (wl_local_port(u) != 0) fail("%s: at port %ld", "u", wl_local_port(u));
		r = recv(u, &c, 1, MSG_DONTWAIT);
		if (r != 0) fail("%s: a read gives %ld, not EOF", "u", r < 0 ? -errno : r);
		if (!alone) {
			check_listener("l4", AF_INET, "127.0.0.1", l4, p4);
			check_listener("l6", AF_INET6, "::1", l6, p6);
		}
		if (bad) wl_say("check bad %s", why);
		else wl_say("check ok");
	}
}
