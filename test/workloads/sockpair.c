/* sockpair STATEFILE: unix socketpairs with data in flight.
 *  a (stream): "hello-stream" queued towards a[0], "back" towards a[1];
 *  b (dgram): messages "m1" and "message-two" queued at b[0];
 *  c (seqpacket): c[1] is held by a forked child that answers each message upper-cased;
 *  d (stream): "last" queued at d[0], then d[1] shut down for writing.
 * On SIGUSR1 the parent checks all of it without changing it (peeks; the datagrams are read and
 * sent again in order) and that the child answers: "check ok" or "check bad what=...". */
#include "workload.h"
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

static int peek_is(int fd, const char *want) {
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	int a[2], b[2], c[2], d[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) || socketpair(AF_UNIX, SOCK_DGRAM, 0, b) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c) || socketpair(AF_UNIX, SOCK_STREAM, 0, d)) { wl_say("error socketpair"); return 1; }
	pid_t child = fork();
	if (child < 0) return 1;
	if (child == 0) {
		close(c[0]);
		for (;;) {
			char buf[256];
			ssize_t n = recv(c[1], buf, sizeof buf, 0);
			if (n <= 0) _exit(0);
			for (ssize_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
			send(c[1], buf, (size_t)n, 0);
		}
	}
	close(c[1]);
	if (write(a[1], "hello-stream", 12) != 12 || write(a[0], "back", 4) != 4) return 1;
	if (send(b[1], "m1", 2, 0) != 2 || send(b[1], "message-two", 11, 0) != 11) return 1;
	if (write(d[1], "last", 4) != 4 || shutdown(d[1], SHUT_WR)) return 1;
	wl_handle_usr1();
	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		if (!peek_is(a[0], "hello-stream")) bad = "stream-a0";
		else if (!peek_is(a[1], "back")) bad = "stream-a1";
		char m[2][64];
		ssize_t m1 = recv(b[0], m[0], sizeof m[0], MSG_DONTWAIT), m2 = recv(b[0], m[1], sizeof m[1], MSG_DONTWAIT);
		if (!bad && !(m1 == 2 && !memcmp(m[0], "m1", 2) && m2 == 11 && !memcmp(m[1], "message-two", 11))) bad = "dgram";
		if (m1 > 0) send(b[1], m[0], (size_t)m1, 0);
		if (m2 > 0) send(b[1], m[1], (size_t)m2, 0);
		if (!bad && !peek_is(d[0], "last")) bad = "shutdown-data";
		if (!bad && (send(d[1], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE)) bad = "shutdown-state";
		if (!bad) {
			char buf[16] = {0};
			struct pollfd p = {.fd = c[0], .events = POLLIN};
			if (send(c[0], "ping", 4, 0) != 4 || poll(&p, 1, 2000) != 1 || recv(c[0], buf, sizeof buf, 0) != 4 || memcmp(buf, "PING", 4)) bad = "seqpacket-child";
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
