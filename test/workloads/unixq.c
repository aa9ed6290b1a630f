/* unixq DIR STATEFILE: what waits in unix sockets' queues, and the sockets' other states.
 *  sp0/sp1 (stream pair): queued at sp1 "hdr-A", then "with-fds" carrying a pipe's read end
 *      (the pipe holds "pipe-data", its write end closed) and DIR/f.txt opened at position 4,
 *      then "tail"; only the queue holds those two files.
 *  q0/q1 (seqpacket pair): queued at q1 "sq-fds" carrying the write end of a pipe whose read
 *      end the workload keeps (pr).
 *  r (datagram, DIR/r.sock): queued "m1" from a (DIR/a.sock), "m2" from an unnamed socket, "m3"
 *      from b (abstract "@crtools-unixq-b-PID"), "m4" from a carrying DIR/f.txt at position 2,
 *      "m5" from c (DIR/c.sock, connected to r); each keeps its sender.
 *  x (datagram, DIR/x.sock) connected to y (DIR/y.sock): "to-x" queued at x, sent by y.
 *  lsq (seqpacket listener, DIR/sq.sock): csq connected and accepted as ssq, "sq-to-server"
 *      queued at ssq, "sq-to-client" at csq; wsq waiting in its queue, shut down for writing.
 *  sh0/sh1 (stream pair): sh0 sent "bye" and shut down for writing; sh1 shut down for reading.
 *  k0/k1 (seqpacket pair): k1 shut down for both.
 *  g0/g1 (datagram pair): queued at g1 a message of no bytes, then "after-zero".
 * On SIGUSR1 it reads and checks everything (senders' addresses, the files through the
 * received descriptors), then queues it all again the same way: "check ok" or "check bad what=...".
 *
 * unixq DIR criu STATEFILE: the same without the datagram sockets and the message of no bytes
 * (CRIU 4.2 keeps no datagram's sender and takes an empty message for the end of the queue).
 *
 * unixq DIR refused STATEFILE: what a dump refuses, each queue checked (peeked) on SIGUSR1:
 *  cr1 (datagram pair end with SO_PASSCRED): "cred" queued with its sender's credentials;
 *  cw: connected to the listener lw (DIR/w.sock), waiting in its queue, "early" sent;
 *  f1 (stream pair end): "sock" queued carrying a unix socket;
 *  e0 (stream pair end): its other end held by a process outside the tree ("outside=PID"). */
#include "workload.h"
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *dir;
static char fpath[256], abs_b[64];

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

static const char *in_dir(const char *name) {
	static char bufs[8][256];
	static int k;
	char *b = bufs[k++ % 8];
	snprintf(b, 256, "%s/%s", dir, name);
	return b;
}

static int bound(int type, const char *name, int abstract) {
	socklen_t len;
	struct sockaddr_un a = addr_of(name, abstract, &len);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len)) return -1;
	return fd;
}

static int connect_fd(int fd, const char *name) {
	socklen_t len;
	struct sockaddr_un a = addr_of(name, 0, &len);
	return connect(fd, (struct sockaddr *)&a, len);
}

/* send a message (with descriptors when n > 0), to a path name when given */
static int send_fds(int fd, const char *to, const char *msg, const int *fds, int n) {
	char ctl[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh;
	socklen_t alen;
	struct sockaddr_un a;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (to) {
		a = addr_of(to, 0, &alen);
		mh.msg_name = &a;
		mh.msg_namelen = alen;
	}
	if (n) {
		memset(ctl, 0, sizeof ctl);
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)strlen(msg) ? 0 : -1;
}

/* receive one message: its bytes must be `want`, its sender's name `from` (NULL: unnamed;
   abstract names start with '@'), it must carry `nfds` descriptors, put into fds */
static int recv_is(int fd, const char *want, const char *from, int *fds, int nfds) {
	char buf[256], ctl[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct sockaddr_un a;
	struct msghdr mh;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int got = 0;
	memset(&mh, 0, sizeof mh);
	memset(&a, 0, sizeof a);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_name = &a;
	mh.msg_namelen = sizeof a;
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof ctl;
	if (poll(&p, 1, 2000) != 1) return 0;
	ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (r != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)r)) return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return 0;
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int k = 0; k < n && got < 8; k++) {
			if (got < nfds) fds[got] = ((int *)CMSG_DATA(c))[k];
			else close(((int *)CMSG_DATA(c))[k]);
			got++;
		}
	}
	if (got != nfds) return 0;
	if (from == (const char *)1) return 1; /* any sender */
	size_t plen = mh.msg_namelen > offsetof(struct sockaddr_un, sun_path) ? mh.msg_namelen - offsetof(struct sockaddr_un, sun_path) : 0;
	if (!from) return plen == 0;
	if (from[0] == '@') return plen == strlen(from) && a.sun_path[0] == 0 && !memcmp(a.sun_path + 1, from + 1, plen - 1);
	return plen > 0 && strcmp(a.sun_path, from) == 0;
}

/* an open file's position and the rest of its content */
static int file_is(int fd, off_t pos, const char *rest) {
	char buf[64];
	if (lseek(fd, 0, SEEK_CUR) != pos) return 0;
	ssize_t r = read(fd, buf, sizeof buf);
	return r == (ssize_t)strlen(rest) && !memcmp(buf, rest, (size_t)r);
}

static int open_at(off_t pos) {
	int fd = open(fpath, O_RDONLY);
	if (fd >= 0 && lseek(fd, pos, SEEK_SET) != pos) return -1;
	return fd;
}

static int full = 1; /* 0: without what CRIU 4.2 cannot carry */
static int sp0, sp1, q0, q1, pr, pw, r, a, b, c, x, y, lsq, csq, ssq, wsq, sh0, sh1, k0, k1, g0, g1;

/* everything queued as the header says (pw: the pipe whose read end pr the workload keeps) */
static int queue_all(void) {
	int p[2], fds[2];
	if (pipe(p) || write(p[1], "pipe-data", 9) != 9) return -1;
	close(p[1]);
	fds[0] = p[0];
	fds[1] = open_at(4);
	if (fds[1] < 0 || send(sp0, "hdr-A", 5, 0) != 5 || send_fds(sp0, 0, "with-fds", fds, 2) || send(sp0, "tail", 4, 0) != 4) return -1;
	close(fds[0]), close(fds[1]);
	if (send_fds(q0, 0, "sq-fds", &pw, 1)) return -1;
	if (send(csq, "sq-to-server", 12, 0) != 12 || send(ssq, "sq-to-client", 12, 0) != 12) return -1;
	if (!full) return 0;
	int u = socket(AF_UNIX, SOCK_DGRAM, 0), f2 = open_at(2);
	if (u < 0 || f2 < 0) return -1;
	if (send_fds(a, in_dir("r.sock"), "m1", 0, 0) || send_fds(u, in_dir("r.sock"), "m2", 0, 0)) return -1;
	{
		socklen_t len;
		struct sockaddr_un ra = addr_of(in_dir("r.sock"), 0, &len);
		if (sendto(b, "m3", 2, 0, (struct sockaddr *)&ra, len) != 2) return -1;
	}
	if (send_fds(a, in_dir("r.sock"), "m4", &f2, 1) || send(c, "m5", 2, 0) != 2) return -1;
	if (send(g0, "", 0, 0) != 0 || send(g0, "after-zero", 10, 0) != 10) return -1;
	close(u), close(f2);
	if (send_fds(y, in_dir("x.sock"), "to-x", 0, 0)) return -1;
	return 0;
}

static const char *check(void) {
	int fds[2], pfd, f2;
	char buf[64];
	if (!recv_is(sp1, "hdr-Awith-fds", (const char *)1, fds, 2)) return "stream-fds";
	if (read(fds[0], buf, sizeof buf) != 9 || memcmp(buf, "pipe-data", 9) || read(fds[0], buf, sizeof buf) != 0) return "stream-fds-pipe";
	if (!file_is(fds[1], 4, "456789")) return "stream-fds-file";
	close(fds[0]), close(fds[1]);
	if (!recv_is(sp1, "tail", (const char *)1, 0, 0)) return "stream-tail";
	if (!recv_is(q1, "sq-fds", (const char *)1, &pfd, 1)) return "seqpacket-fds";
	if (write(pfd, "through", 7) != 7 || read(pr, buf, sizeof buf) != 7 || memcmp(buf, "through", 7)) return "seqpacket-fds-pipe";
	close(pfd);
	if (full) {
	if (!recv_is(r, "m1", in_dir("a.sock"), 0, 0)) return "dgram-m1";
	if (!recv_is(r, "m2", 0, 0, 0)) return "dgram-m2";
	if (!recv_is(r, "m3", abs_b, 0, 0)) return "dgram-m3";
	if (!recv_is(r, "m4", in_dir("a.sock"), &f2, 1)) return "dgram-m4";
	if (!file_is(f2, 2, "23456789")) return "dgram-m4-file";
	close(f2);
	if (!recv_is(r, "m5", in_dir("c.sock"), 0, 0)) return "dgram-m5";
	if (!recv_is(x, "to-x", in_dir("y.sock"), 0, 0)) return "dgram-connected";
	}
	if (!recv_is(ssq, "sq-to-server", (const char *)1, 0, 0) || !recv_is(csq, "sq-to-client", (const char *)1, 0, 0)) return "seqpacket-conn";
	if (send(csq, "live", 4, 0) != 4 || !recv_is(ssq, "live", (const char *)1, 0, 0)) return "seqpacket-live";
	{
		struct pollfd p = {.fd = lsq, .events = POLLIN};
		if (poll(&p, 1, 0) != 1) return "seqpacket-waiting";
	}
	if (send(wsq, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) return "waiting-shutdown";
	/* shutdowns: sh1 reads "bye" then the end; it still sends to sh0; sh0 cannot send */
	if (!recv_is(sh1, "bye", (const char *)1, 0, 0) || recv(sh1, buf, sizeof buf, MSG_DONTWAIT) != 0) return "shutdown-read";
	if (send(sh1, "back", 4, MSG_NOSIGNAL) != 4 || !recv_is(sh0, "back", (const char *)1, 0, 0)) return "shutdown-back";
	if (send(sh0, "no", 2, MSG_NOSIGNAL) != -1 || errno != EPIPE) return "shutdown-write";
	if (send(k0, "no", 2, MSG_NOSIGNAL) != -1 || errno != EPIPE) return "shutdown-both";
	if (recv(k1, buf, sizeof buf, MSG_DONTWAIT) != 0) return "shutdown-both-read";
	if (full && recv(g1, buf, sizeof buf, MSG_DONTWAIT) != 0) return "zero-length";
	if (full && !recv_is(g1, "after-zero", (const char *)1, 0, 0)) return "zero-length";
	return 0;
}

static int peek_is(int fd, const char *want) {
	char buf[64];
	ssize_t r = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	return r == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)r);
}

static int refused(void) {
	int sv[2], one = 1;
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) || send(sv[0], "cred", 4, 0) != 4) return 1;
	int cr1 = sv[1];
	int lw = bound(SOCK_STREAM, in_dir("w.sock"), 0), cw = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lw < 0 || listen(lw, 4) || cw < 0 || connect_fd(cw, in_dir("w.sock")) || send(cw, "early", 5, 0) != 5) return 1;
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	if (u < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || send_fds(sv[0], 0, "sock", &u, 1)) return 1;
	int f1 = sv[1];
	close(u);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
	int e0 = sv[0], ps[2];
	if (pipe(ps)) return 1;
	pid_t holder = fork();
	if (holder == 0) {
		if (fork() == 0) {
			pid_t me = getpid();
			if (write(ps[1], &me, sizeof me) != sizeof me) _exit(1);
			for (int fd = 0; fd < 1024; fd++)
				if (fd != sv[1]) close(fd);
			for (;;) pause();
		}
		_exit(0);
	}
	pid_t outside = 0;
	if (holder < 0 || waitpid(holder, 0, 0) != holder || read(ps[0], &outside, sizeof outside) != sizeof outside) return 1;
	close(ps[0]), close(ps[1]), close(sv[1]);
	wl_handle_usr1();
	wl_say("ready pid=%d outside=%d", (int)getpid(), (int)outside);
	for (;;) {
		wl_wait_check();
		struct pollfd p = {.fd = lw, .events = POLLIN};
		const char *bad = 0;
		if (!peek_is(cr1, "cred")) bad = "cred";
		else if (poll(&p, 1, 0) != 1) bad = "waiting";
		else if (!peek_is(f1, "sock")) bad = "in-flight-socket";
		else if (send(e0, "x", 1, MSG_NOSIGNAL) != 1) bad = "outside";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	dir = argv[1];
	wl_detach(argv[argc - 1]);
	if (argc == 4 && !strcmp(argv[2], "refused")) return refused();
	full = !(argc == 4 && !strcmp(argv[2], "criu"));
	snprintf(fpath, sizeof fpath, "%s/f.txt", dir);
	snprintf(abs_b, sizeof abs_b, "@crtools-unixq-b-%d", (int)getpid());
	const char *names[] = {"r.sock", "a.sock", "c.sock", "x.sock", "y.sock", "sq.sock"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(in_dir(names[i]));
	int ff = open(fpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (ff < 0 || write(ff, "0123456789", 10) != 10) { wl_say("error file"); return 1; }
	close(ff);
	int sv[2], pp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
	sp0 = sv[0], sp1 = sv[1];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) return 1;
	q0 = sv[0], q1 = sv[1];
	if (pipe(pp)) return 1;
	pr = pp[0], pw = pp[1];
	if (full) {
		r = bound(SOCK_DGRAM, in_dir("r.sock"), 0);
		a = bound(SOCK_DGRAM, in_dir("a.sock"), 0);
		b = bound(SOCK_DGRAM, abs_b + 1, 1);
		c = bound(SOCK_DGRAM, in_dir("c.sock"), 0);
		x = bound(SOCK_DGRAM, in_dir("x.sock"), 0);
		y = bound(SOCK_DGRAM, in_dir("y.sock"), 0);
		if (r < 0 || a < 0 || b < 0 || c < 0 || x < 0 || y < 0) { wl_say("error bind"); return 1; }
		if (connect_fd(c, in_dir("r.sock")) || connect_fd(x, in_dir("y.sock"))) { wl_say("error connect"); return 1; }
	}
	lsq = bound(SOCK_SEQPACKET, in_dir("sq.sock"), 0);
	if (lsq < 0 || listen(lsq, 4)) { wl_say("error bind"); return 1; }
	csq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (csq < 0 || connect_fd(csq, in_dir("sq.sock")) || (ssq = accept(lsq, 0, 0)) < 0) { wl_say("error accept"); return 1; }
	wsq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (wsq < 0 || connect_fd(wsq, in_dir("sq.sock")) || shutdown(wsq, SHUT_WR)) { wl_say("error waiting"); return 1; }
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
	sh0 = sv[0], sh1 = sv[1];
	if (send(sh0, "bye", 3, 0) != 3 || shutdown(sh0, SHUT_WR) || shutdown(sh1, SHUT_RD)) return 1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) return 1;
	k0 = sv[0], k1 = sv[1];
	if (shutdown(k1, SHUT_RDWR)) return 1;
	if (full && socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 1;
	if (full) g0 = sv[0], g1 = sv[1];
	if (queue_all()) { wl_say("error queue errno=%d", errno); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = check();
		/* put back what the check consumed (the shutdown pair's "bye" included) */
		if (!bad) {
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || dup2(sv[0], sh0) < 0 || dup2(sv[1], sh1) < 0) bad = "again-pair";
			close(sv[0]), close(sv[1]);
			if (!bad && (send(sh0, "bye", 3, 0) != 3 || shutdown(sh0, SHUT_WR) || shutdown(sh1, SHUT_RD))) bad = "again-shutdown";
			if (!bad && queue_all()) bad = "again-queue";
		}
		if (bad) wl_say("check bad what=%s errno=%d", bad, errno);
		else wl_say("check ok");
	}
}
