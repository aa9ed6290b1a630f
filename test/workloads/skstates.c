/* skstates DIR STATEFILE: sockets in states a restore once changed silently or a dump refused.
 *  dp (datagram socketpair end, unnamed): its other end sent "left" and was closed.
 *  dq (datagram socketpair end, unnamed): its other end sent "fd" carrying the read end of a pipe
 *      holding "pipe-data" (both pipe ends closed since) and was closed (zdtm scm09).
 *  un (stream, bound to the abstract "@crtools-skstates-PID"): never listening nor connected.
 *  rl (stream listener bound to the relative name "rel.sock", the working directory DIR).
 *  ud (UDP, never bound): SO_BROADCAST, IP_TOS 0x10, IP_TTL 7.
 *  f6 (UDP IPv6, bound to the non-local [2001:db8::42]:PORT6 with IP_FREEBIND, cleared since);
 *  k6 (UDP IPv6, IP_FREEBIND set through SOL_IP, bound to [2001:db8::43]:PORT6).
 *  r0, r1 (TCP listeners on 127.0.0.1:PORT, both bound with SO_REUSEPORT; r0 cleared it since).
 *  me (datagram, bound to "self.sock" in DIR and connected to itself): "me" queued from itself.
 *  ae/ac (stream): ae accepted from a listener bound to "acc.sock" (relative), closed since; ac
 *      its client.
 * skstates DIR criu STATEFILE: the same without ae/ac (CRIU 4.2's restore leaves a connected
 * stream socket unnamed: its FIXME in bind_unix_sk).
 * On SIGUSR1 it checks each (dp: "left" peeked; un, rl: their names; rl: a connection to
 * "rel.sock" from DIR accepted; the options; me: "me" peeked with its own name as sender, its
 * peer itself; ae: named "acc.sock", ac's peer named so, a message across) and says "check ok"
 * or "check bad what=...".
 *
 * skstates DIR tcpclose PORT STATEFILE: c (client) connected to 127.0.0.1:PORT and a (its
 * accepted end). On SIGUSR1: "check ok" when both are closed as --tcp-close makes them (TCP_INFO
 * state CLOSE, a read says EOF, poll POLLHUP, a write EPIPE), else "check bad what=...". */
#include "workload.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

static int dp, dq, un, rl, ud, f6, k6, r0, r1, ca, cc, me, ae, ac;
static char abs_name[64];
static int bad, with_ae = 1;
static char what[512];

static void fail(const char *w) {
	bad = 1;
	size_t n = strlen(what);
	snprintf(what + n, sizeof what - n, "%s%s", n ? "," : "", w);
}

static int geti(int fd, int level, int name) {
	int v = -1;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, name, &v, &l) < 0) return -1;
	return v;
}

static int seti(int fd, int level, int name, int v) { return setsockopt(fd, level, name, &v, sizeof v); }

static struct sockaddr_in6 v6(const char *a, int port) {
	struct sockaddr_in6 s;
	memset(&s, 0, sizeof s);
	s.sin6_family = AF_INET6;
	s.sin6_port = htons((unsigned short)port);
	inet_pton(AF_INET6, a, &s.sin6_addr);
	return s;
}

static int tcp_listener(int port, int reuseport) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || (reuseport && seti(s, SOL_SOCKET, SO_REUSEPORT, 1) < 0)) return -1;
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0) return -1;
	return s;
}

static int named_is(int fd, const char *name, int abstract) {
	struct sockaddr_un a;
	socklen_t l = sizeof a;
	memset(&a, 0, sizeof a);
	if (getsockname(fd, (struct sockaddr *)&a, &l) < 0) return 0;
	if (abstract) return a.sun_path[0] == 0 && l == offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name) && !memcmp(a.sun_path + 1, name, strlen(name));
	return !strcmp(a.sun_path, name);
}

static void check_all(void) {
	char buf[16] = { 0 };
	if (recv(dp, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) != 4 || memcmp(buf, "left", 4)) fail("dp");
	/* the descriptor in flight, peeked (a copy of it comes with each peek): its pipe still holds its bytes */
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
	memset(buf, 0, sizeof buf);
	struct cmsghdr *cm;
	if (recvmsg(dq, &mh, MSG_PEEK | MSG_DONTWAIT) != 2 || memcmp(buf, "fd", 2) || !(cm = CMSG_FIRSTHDR(&mh)) || cm->cmsg_type != SCM_RIGHTS) fail("dq");
	else {
		int pfd, n = -1;
		memcpy(&pfd, CMSG_DATA(cm), sizeof pfd);
		if (ioctl(pfd, FIONREAD, &n) < 0 || n != 9) fail("dq-pipe");
		close(pfd);
	}
	if (!named_is(un, abs_name, 1) || geti(un, SOL_SOCKET, SO_ACCEPTCONN) != 0) fail("un");
	if (!named_is(rl, "rel.sock", 0) || geti(rl, SOL_SOCKET, SO_ACCEPTCONN) != 1) fail("rl");
	/* a connection to the relative name, from the working directory, reaches rl */
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, "rel.sock");
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) fail("rl-connect");
	else {
		int s = accept(rl, NULL, NULL);
		if (s < 0) fail("rl-accept");
		else close(s);
	}
	if (c >= 0) close(c);
	if (geti(ud, SOL_SOCKET, SO_BROADCAST) != 1 || geti(ud, IPPROTO_IP, IP_TOS) != 0x10 || geti(ud, IPPROTO_IP, IP_TTL) != 7) fail("ud");
	struct sockaddr_in u;
	socklen_t ul = sizeof u;
	if (getsockname(ud, (struct sockaddr *)&u, &ul) < 0 || u.sin_port != 0) fail("ud-bound");
	if (geti(f6, IPPROTO_IP, IP_FREEBIND) != 0 || geti(f6, IPPROTO_IPV6, 78 /* IPV6_FREEBIND */) != 0) fail("f6");
	if (geti(k6, IPPROTO_IP, IP_FREEBIND) != 1) fail("k6");
	if (geti(r0, SOL_SOCKET, SO_REUSEPORT) != 0 || geti(r1, SOL_SOCKET, SO_REUSEPORT) != 1) fail("reuseport");
	if (geti(r0, SOL_SOCKET, SO_ACCEPTCONN) != 1 || geti(r1, SOL_SOCKET, SO_ACCEPTCONN) != 1) fail("listening");
	struct sockaddr_un from, peer;
	socklen_t fl = sizeof from, pl = sizeof peer;
	memset(&from, 0, sizeof from);
	memset(&peer, 0, sizeof peer);
	memset(buf, 0, sizeof buf);
	if (recvfrom(me, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&from, &fl) != 2 || memcmp(buf, "me", 2) || strcmp(from.sun_path, "self.sock")) fail("me");
	if (!named_is(me, "self.sock", 0) || getpeername(me, (struct sockaddr *)&peer, &pl) < 0 || strcmp(peer.sun_path, "self.sock")) fail("me-peer");
	pl = sizeof peer;
	memset(&peer, 0, sizeof peer);
	if (!with_ae) return;
	if (!named_is(ae, "acc.sock", 0) || getpeername(ac, (struct sockaddr *)&peer, &pl) < 0 || strcmp(peer.sun_path, "acc.sock")) fail("ae");
	if (send(ac, "hi", 2, MSG_DONTWAIT) != 2 || recv(ae, buf, sizeof buf, MSG_DONTWAIT) != 2 || memcmp(buf, "hi", 2)) fail("ae-data");
}

static void check_closed(int s, const char *name) {
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	char b;
	char w[32];
	snprintf(w, sizeof w, "%s", name);
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || ti.tcpi_state != TCP_CLOSE) { fail(w); return; }
	if (recv(s, &b, 1, MSG_DONTWAIT) != 0) { snprintf(w, sizeof w, "%s-read", name); fail(w); }
	struct pollfd p = { .fd = s, .events = POLLIN | POLLOUT };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLHUP)) { snprintf(w, sizeof w, "%s-poll", name); fail(w); }
	if (send(s, "x", 1, MSG_DONTWAIT) != -1 || errno != EPIPE) { snprintf(w, sizeof w, "%s-send", name); fail(w); }
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *dir = argv[1];
	int tcpclose = argc == 5 && !strcmp(argv[2], "tcpclose");
	with_ae = !(argc == 4 && !strcmp(argv[2], "criu"));
	wl_detach(argv[argc - 1]);
	signal(SIGUSR1, wl_on_usr1);
	signal(SIGPIPE, SIG_IGN);
	if (chdir(dir) < 0) { wl_say("error chdir"); return 1; }
	if (tcpclose) {
		int port = atoi(argv[3]);
		int l = tcp_listener(port, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cc = socket(AF_INET, SOCK_STREAM, 0);
		if (l < 0 || cc < 0 || connect(cc, (struct sockaddr *)&a, sizeof a) < 0 || (ca = accept(l, NULL, NULL)) < 0) { wl_say("error tcp"); return 1; }
		close(l);
		wl_say("ready pid=%d", (int)getpid());
		for (;;) {
			wl_wait_check();
			bad = 0;
			what[0] = 0;
			check_closed(ca, "accepted");
			check_closed(cc, "client");
			if (bad) wl_say("check bad what=%s", what);
			else wl_say("check ok");
		}
	}
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) < 0 || send(pair[1], "left", 4, 0) != 4) { wl_say("error dp"); return 1; }
	close(pair[1]);
	dp = pair[0];
	int pp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) < 0 || pipe(pp) < 0 || write(pp[1], "pipe-data", 9) != 9) { wl_say("error dq"); return 1; }
	{
		char c2[CMSG_SPACE(sizeof(int))];
		memset(c2, 0, sizeof c2);
		struct iovec v = { "fd", 2 };
		struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = c2, .msg_controllen = sizeof c2 };
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pp[0], sizeof(int));
		if (sendmsg(pair[1], &m, 0) != 2) { wl_say("error dq send"); return 1; }
	}
	close(pp[0]);
	close(pp[1]);
	close(pair[1]);
	dq = pair[0];

	snprintf(abs_name, sizeof abs_name, "crtools-skstates-%d", (int)getpid());
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path + 1, abs_name, strlen(abs_name));
	un = socket(AF_UNIX, SOCK_STREAM, 0);
	if (un < 0 || bind(un, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abs_name))) < 0) { wl_say("error un"); return 1; }

	struct sockaddr_un r = { .sun_family = AF_UNIX };
	strcpy(r.sun_path, "rel.sock");
	unlink("rel.sock");
	rl = socket(AF_UNIX, SOCK_STREAM, 0);
	if (rl < 0 || bind(rl, (struct sockaddr *)&r, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen("rel.sock"))) < 0 || listen(rl, 4) < 0) { wl_say("error rl"); return 1; }

	ud = socket(AF_INET, SOCK_DGRAM, 0);
	if (ud < 0 || seti(ud, SOL_SOCKET, SO_BROADCAST, 1) < 0 || seti(ud, IPPROTO_IP, IP_TOS, 0x10) < 0 || seti(ud, IPPROTO_IP, IP_TTL, 7) < 0) { wl_say("error ud"); return 1; }

	/* a port for the IPv6 sockets and the listeners: the first free from a seed */
	int port6 = 20000 + (int)getpid() % 20000, port = 0;
	struct sockaddr_in6 s6 = v6("2001:db8::42", port6), t6 = v6("2001:db8::43", port6);
	f6 = socket(AF_INET6, SOCK_DGRAM, 0);
	k6 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (f6 < 0 || k6 < 0 || seti(f6, IPPROTO_IP, IP_FREEBIND, 1) < 0 || seti(k6, IPPROTO_IP, IP_FREEBIND, 1) < 0 ||
	    bind(f6, (struct sockaddr *)&s6, sizeof s6) < 0 || bind(k6, (struct sockaddr *)&t6, sizeof t6) < 0 || seti(f6, IPPROTO_IP, IP_FREEBIND, 0) < 0) {
		wl_say("error freebind errno=%d", errno);
		return 1;
	}
	for (int p = 30000 + (int)getpid() % 20000, k = 0; k < 200 && !port; k++, p++) {
		r0 = tcp_listener(p, 1);
		if (r0 < 0) continue;
		r1 = tcp_listener(p, 1);
		if (r1 < 0) { close(r0); continue; }
		port = p;
	}
	if (!port || seti(r0, SOL_SOCKET, SO_REUSEPORT, 0) < 0) { wl_say("error reuseport"); return 1; }

	struct sockaddr_un sn = { .sun_family = AF_UNIX };
	strcpy(sn.sun_path, "self.sock");
	unlink("self.sock");
	me = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (me < 0 || bind(me, (struct sockaddr *)&sn, sizeof sn) < 0 || connect(me, (struct sockaddr *)&sn, sizeof sn) < 0 || send(me, "me", 2, 0) != 2) { wl_say("error me"); return 1; }

	struct sockaddr_un an = { .sun_family = AF_UNIX };
	strcpy(an.sun_path, "acc.sock");
	unlink("acc.sock");
	int al = socket(AF_UNIX, SOCK_STREAM, 0);
	ac = socket(AF_UNIX, SOCK_STREAM, 0);
	if (!with_ae) {
		close(al);
		close(ac);
	} else if (al < 0 || ac < 0 || bind(al, (struct sockaddr *)&an, sizeof an) < 0 || listen(al, 1) < 0 || connect(ac, (struct sockaddr *)&an, sizeof an) < 0 ||
	    (ae = accept(al, NULL, NULL)) < 0) { wl_say("error ae"); return 1; }
	else close(al);

	bad = 0;
	what[0] = 0;
	check_all();
	if (bad) { wl_say("error setup what=%s", what); return 1; }
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		bad = 0;
		what[0] = 0;
		check_all();
		if (bad) wl_say("check bad what=%s", what);
		else wl_say("check ok");
	}
}
