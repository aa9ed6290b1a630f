/* unixconn DIR STATEFILE: unix sockets connected through names, with data in flight.
 *  lp: stream listener on DIR/l.sock; c1 connected and accepted as s1, "to-server-1" queued at
 *      s1 and "to-client-1" at c1; c3 connected and left waiting in lp's queue;
 *  la: seqpacket listener on the abstract name "@crtools-unixconn-PID"; c2 connected and accepted
 *      as s2, which a forked child holds alone (it answers: upper-cased echo; "name" → its
 *      getsockname; "again" → "sq-back"); "sq-back" queued at c2;
 *  r:  datagram socket bound to DIR/r.sock; d an unnamed datagram socket connect()ed to it,
 *      "dg-1" and "dg-2" queued at r;
 *  lu: stream listener on DIR/u.sock whose file was unlinked; c4 connected and accepted as s4,
 *      "ghost-data" queued at s4.
 * On SIGUSR1 the parent checks names (getsockname/getpeername), the queued data, accepts the
 * waiting connection and talks over every connection, then puts everything back as it was (the
 * queued data queued again, a new connection waiting in lp's queue): "check ok" or
 * "check bad what=...". */
#include "workload.h"
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un addr_of(const char *name, int abstract, socklen_t *len) {
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (abstract) {
		memcpy(a.sun_path + 1, name, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	} else {
		memcpy(a.sun_path, name, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return a;
}

static int listener(int type, const char *name, int abstract) {
	socklen_t len;
	struct sockaddr_un a = addr_of(name, abstract, &len);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) || listen(fd, 4)) return -1;
	return fd;
}

static int connect_to(int type, const char *name, int abstract) {
	socklen_t len;
	struct sockaddr_un a = addr_of(name, abstract, &len);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, len)) return -1;
	return fd;
}

/* is the socket's own (self) or peer's name this one? */
static int name_is(int fd, int peer, const char *name, int abstract) {
	struct sockaddr_un got;
	socklen_t glen = sizeof got, wlen;
	struct sockaddr_un want = addr_of(name, abstract, &wlen);
	memset(&got, 0, sizeof got);
	if ((peer ? getpeername(fd, (struct sockaddr *)&got, &glen) : getsockname(fd, (struct sockaddr *)&got, &glen))) return 0;
	if (!abstract) return strcmp(got.sun_path, want.sun_path) == 0;
	return glen == wlen && memcmp(got.sun_path, want.sun_path, wlen - offsetof(struct sockaddr_un, sun_path)) == 0;
}

static int unnamed(int fd) {
	struct sockaddr_un got;
	socklen_t glen = sizeof got;
	return getsockname(fd, (struct sockaddr *)&got, &glen) == 0 && glen == sizeof(sa_family_t);
}

/* read exactly what is expected, waiting up to 2 s */
static int read_is(int fd, const char *want) {
	char buf[128];
	size_t n = strlen(want);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1) return 0;
	ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	return r == (ssize_t)n && memcmp(buf, want, n) == 0;
}

static int say(int fd, const char *s) { return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s); }

/* the data queued at either end is read, a message goes each way, the data is queued again */
static int talk(int a, int b, const char *queued_at_a, const char *queued_at_b, const char *tag) {
	char up[64], down[64];
	snprintf(up, sizeof up, "up-%s", tag);
	snprintf(down, sizeof down, "down-%s", tag);
	if ((queued_at_a && !read_is(a, queued_at_a)) || (queued_at_b && !read_is(b, queued_at_b))) return 0;
	if (!say(a, up) || !read_is(b, up) || !say(b, down) || !read_is(a, down)) return 0;
	return (!queued_at_b || say(a, queued_at_b)) && (!queued_at_a || say(b, queued_at_a));
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *dir = argv[1];
	wl_detach(argv[2]);
	char lpath[256], rpath[256], upath[256], abs[64];
	snprintf(lpath, sizeof lpath, "%s/l.sock", dir);
	snprintf(rpath, sizeof rpath, "%s/r.sock", dir);
	snprintf(upath, sizeof upath, "%s/u.sock", dir);
	snprintf(abs, sizeof abs, "crtools-unixconn-%d", (int)getpid());
	unlink(lpath), unlink(rpath), unlink(upath);

	int lp = listener(SOCK_STREAM, lpath, 0), la = listener(SOCK_SEQPACKET, abs, 1), lu = listener(SOCK_STREAM, upath, 0);
	if (lp < 0 || la < 0 || lu < 0) { wl_say("error listen"); return 1; }
	int c1 = connect_to(SOCK_STREAM, lpath, 0), s1 = accept(lp, 0, 0);
	int c2 = connect_to(SOCK_SEQPACKET, abs, 1), s2 = accept(la, 0, 0);
	int c4 = connect_to(SOCK_STREAM, upath, 0), s4 = accept(lu, 0, 0);
	int c3 = connect_to(SOCK_STREAM, lpath, 0);
	if (c1 < 0 || s1 < 0 || c2 < 0 || s2 < 0 || c3 < 0 || c4 < 0 || s4 < 0) { wl_say("error connect"); return 1; }
	unlink(upath);
	socklen_t rlen;
	struct sockaddr_un ra = addr_of(rpath, 0, &rlen);
	int r = socket(AF_UNIX, SOCK_DGRAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (r < 0 || d < 0 || bind(r, (struct sockaddr *)&ra, rlen) || connect(d, (struct sockaddr *)&ra, rlen)) { wl_say("error dgram"); return 1; }
	if (!say(c1, "to-server-1") || !say(s1, "to-client-1") || !say(s2, "sq-back") || !say(c4, "ghost-data") ||
	    !say(d, "dg-1") || !say(d, "dg-2")) { wl_say("error send"); return 1; }

	pid_t child = fork();
	if (child < 0) return 1;
	if (child == 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != s2) close(fd);
		for (;;) {
			char buf[256];
			ssize_t n = recv(s2, buf, sizeof buf, 0);
			if (n <= 0) _exit(0);
			if (n == 4 && !memcmp(buf, "name", 4)) {
				if (name_is(s2, 0, abs, 1) && unnamed(s2) == 0) say(s2, "name-ok");
				else say(s2, "name-bad");
			} else if (n == 5 && !memcmp(buf, "again", 5)) {
				say(s2, "sq-back");
			} else {
				for (ssize_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
				send(s2, buf, (size_t)n, 0);
			}
		}
	}
	close(s2);
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		/* names */
		if (!name_is(lp, 0, lpath, 0) || !name_is(s1, 0, lpath, 0) || !name_is(c1, 1, lpath, 0) || !unnamed(c1)) bad = "names-path";
		else if (!name_is(la, 0, abs, 1) || !name_is(c2, 1, abs, 1) || !unnamed(c2)) bad = "names-abstract";
		else if (!name_is(r, 0, rpath, 0) || !name_is(d, 1, rpath, 0) || !unnamed(d)) bad = "names-dgram";
		else if (!name_is(lu, 0, upath, 0) || !name_is(s4, 0, upath, 0) || !name_is(c4, 1, upath, 0)) bad = "names-unlinked";
		else if (access(upath, F_OK) == 0 || errno != ENOENT) bad = "unlinked-file-back";
		/* connections: queued data, a message each way, the data queued again */
		else if (!talk(s1, c1, "to-server-1", "to-client-1", "1")) bad = "conn-path";
		else if (!talk(c4, s4, 0, "ghost-data", "4")) bad = "conn-unlinked";
		else if (!read_is(c2, "sq-back")) bad = "seqpacket-queued";
		else if (!say(c2, "ping") || !read_is(c2, "PING")) bad = "seqpacket-child";
		else if (!say(c2, "name") || !read_is(c2, "name-ok")) bad = "seqpacket-child-name";
		else if (!say(c2, "again")) bad = "seqpacket-again";
		else {
			struct pollfd p = {.fd = c2, .events = POLLIN};
			if (poll(&p, 1, 2000) != 1) bad = "seqpacket-requeue";
		}
		if (!bad) {
			/* the datagrams, in order; one more each way is impossible (d is unnamed): one from d */
			if (!read_is(r, "dg-1") || !read_is(r, "dg-2")) bad = "dgram-queued";
			else if (!say(d, "dg-x") || !read_is(r, "dg-x")) bad = "dgram-live";
			else if (!say(d, "dg-1") || !say(d, "dg-2")) bad = "dgram-requeue";
		}
		if (!bad) {
			/* the waiting connection: accepted (only it), named after the listener, live; then a
			   new one waits in its place, at the same descriptor */
			struct pollfd p = {.fd = lp, .events = POLLIN};
			int s3 = poll(&p, 1, 0) == 1 ? accept(lp, 0, 0) : -1;
			if (s3 < 0) bad = "waiting-accept";
			else if (poll(&p, 1, 0) != 0) bad = "waiting-more";
			else if (!name_is(s3, 0, lpath, 0) || !name_is(c3, 1, lpath, 0)) bad = "waiting-names";
			else if (!talk(c3, s3, 0, 0, "3")) bad = "waiting-live";
			if (s3 >= 0) close(s3);
			int n3 = connect_to(SOCK_STREAM, lpath, 0);
			if (n3 < 0 || dup2(n3, c3) != c3) bad = bad ? bad : "waiting-again";
			if (n3 >= 0) close(n3);
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
