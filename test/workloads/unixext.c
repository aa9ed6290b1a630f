/* unixext MODE DIR STATEFILE: unix sockets whose peer is outside the dumped tree.
 *  peer:   the outside end, never dumped: a datagram socket bound to DIR/d.sock (it counts what
 *          it receives) and a stream listener on DIR/s.sock (every connection accepted gets its
 *          bytes echoed back upper-cased). Its state file: "ready pid=N dgrams=K".
 *  dgram:  an unnamed datagram socket connect()ed to DIR/d.sock; sends "hello".
 *  stream: a stream socket connected to DIR/s.sock; says "hello" and reads "HELLO".
 * On SIGUSR1 dgram/stream check that the socket is still connected to DIR/?.sock (getpeername)
 * and talk over it: dgram sends "ping" (ECONNREFUSED if nobody is there), stream writes "ping"
 * and reads "PING" back: "check ok" or "check bad what=...". */
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un path_addr(const char *dir, const char *file, socklen_t *len) {
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir, file);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1);
	return a;
}

/* is the socket's peer DIR/FILE? */
static int peer_is(int fd, const char *dir, const char *file) {
	struct sockaddr_un got, want;
	socklen_t glen = sizeof got, wlen;
	memset(&got, 0, sizeof got);
	want = path_addr(dir, file, &wlen);
	if (getpeername(fd, (struct sockaddr *)&got, &glen)) return 0;
	return strcmp(got.sun_path, want.sun_path) == 0;
}

/* read exactly n bytes within 3 s */
static int read_n(int fd, char *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 3000) <= 0) return -1;
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) return -1;
		got += (size_t)r;
	}
	return 0;
}

static int run_peer(const char *dir) {
	socklen_t len;
	struct sockaddr_un a = path_addr(dir, "d.sock", &len);
	unlink(a.sun_path);
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (d < 0 || bind(d, (struct sockaddr *)&a, len)) return 1;
	a = path_addr(dir, "s.sock", &len);
	unlink(a.sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) || listen(l, 8)) return 1;
	struct pollfd p[34];
	int n = 2, dgrams = 0;
	p[0] = (struct pollfd){ d, POLLIN, 0 };
	p[1] = (struct pollfd){ l, POLLIN, 0 };
	wl_say("ready pid=%d dgrams=0", (int)getpid());
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0) continue;
		char buf[256];
		if (p[0].revents & POLLIN) {
			if (recv(d, buf, sizeof buf, 0) > 0) dgrams++;
			wl_say("ready pid=%d dgrams=%d", (int)getpid(), dgrams);
		}
		if ((p[1].revents & POLLIN) && n < 34) {
			int c = accept(l, 0, 0);
			if (c >= 0) p[n++] = (struct pollfd){ c, POLLIN, 0 };
		}
		for (int i = 2; i < n; i++) {
			if (!p[i].revents) continue;
			ssize_t r = read(p[i].fd, buf, sizeof buf);
			if (r <= 0) {
				close(p[i].fd);
				p[i--] = p[--n];
				continue;
			}
			for (ssize_t k = 0; k < r; k++) if (buf[k] >= 'a' && buf[k] <= 'z') buf[k] = (char)(buf[k] - 32);
			if (write(p[i].fd, buf, (size_t)r) != r) continue;
		}
	}
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1], *dir = argv[2];
	wl_detach(argv[3]);
	wl_handle_usr1();
	if (!strcmp(mode, "peer")) return run_peer(dir);
	int dgram = !strcmp(mode, "dgram");
	if (!dgram && strcmp(mode, "stream")) return 2;
	const char *file = dgram ? "d.sock" : "s.sock";
	socklen_t len;
	struct sockaddr_un a = path_addr(dir, file, &len);
	int fd = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, len)) {
		wl_say("setup failed errno=%d", errno);
		return 1;
	}
	char buf[8];
	if (write(fd, "hello", 5) != 5 || (!dgram && (read_n(fd, buf, 5) || memcmp(buf, "HELLO", 5)))) {
		wl_say("setup failed errno=%d", errno);
		return 1;
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		if (!peer_is(fd, dir, file)) bad = "peer-name";
		else if (write(fd, "ping", 4) != 4) bad = "send";
		else if (!dgram && (read_n(fd, buf, 4) || memcmp(buf, "PING", 4))) bad = "echo";
		if (bad) wl_say("check bad what=%s errno=%d", bad, errno);
		else wl_say("check ok");
	}
}
