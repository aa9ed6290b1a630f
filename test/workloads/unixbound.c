/* unixbound DIR [criu] STATEFILE: unix sockets bound to names that are gone or odd (zdtm scm06, sk-unix01).
 *  p (dgram socketpair): each end bound to an abstract name of its own ("@ubA<pid>", "@ubB<pid>"),
 *    a datagram from each end queued at the other;
 *  q (dgram socketpair): both ends bound to DIR/gone/q (the first's file unlinked before the second
 *    binds), the file unlinked again and DIR/gone removed; a datagram queued at q[0];
 *  r (dgram socketpair): r[0] bound to DIR/r, its file kept with mode 0640; r[1] unnamed;
 *  s: a datagram socket bound to DIR/gone2/s with one connected to it, a stream listener bound
 *    to DIR/gone2/l with one connection accepted, both files unlinked and DIR/gone2 removed.
 * On SIGUSR1 it checks without changing anything (the queued datagrams are read, their senders'
 * addresses compared, and sent again from the same end): each name (getsockname), each queued
 * datagram and its sender, a datagram each way on every pair and connection, the removed
 * directories still absent, DIR/r a socket of mode 0640: "check ok" or "check bad what=...".
 * criu: the accepted end's name (the listener's) is not checked: CRIU 4.2 makes an accepted
 * connection as a socketpair and leaves that end unnamed (as with unixconn). */
#include "workload.h"
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>

static socklen_t abstract(struct sockaddr_un *a, const char *name) {
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(a->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static socklen_t pathname(struct sockaddr_un *a, const char *dir, const char *rel) {
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, rel);
	return (socklen_t)sizeof *a;
}

/* fd's name is the one given (len bytes of sockaddr_un, path names compared as strings) */
static int named(int fd, const struct sockaddr_un *want, socklen_t wlen) {
	struct sockaddr_un a;
	socklen_t l = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &l)) return 0;
	if (want->sun_path[0]) return l > offsetof(struct sockaddr_un, sun_path) && strcmp(a.sun_path, want->sun_path) == 0;
	return l == wlen && memcmp(&a, want, wlen) == 0;
}

/* the one datagram queued at fd is `msg`, sent from `from` (NULL: unnamed); sent again from `again` */
static int queued(int fd, const char *msg, const struct sockaddr_un *from, socklen_t flen, int again) {
	char buf[64];
	struct sockaddr_un a;
	socklen_t l = sizeof a;
	memset(&a, 0, sizeof a);
	ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&a, &l);
	if (n != (ssize_t)strlen(msg) || memcmp(buf, msg, (size_t)n)) return 0;
	int ok = from ? (from->sun_path[0] ? strcmp(a.sun_path, from->sun_path) == 0 : l == flen && memcmp(&a, from, flen) == 0) : l <= sizeof(sa_family_t);
	/* nothing more queued */
	if (recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK) >= 0 || errno != EAGAIN) ok = 0;
	if (send(again, msg, strlen(msg), 0) != (ssize_t)strlen(msg)) ok = 0;
	return ok;
}

/* one message each way between a and b, read at once */
static int talks(int a, int b) {
	char buf[16];
	if (send(a, "ping", 4, 0) != 4 || recv(b, buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "ping", 4)) return 0;
	if (send(b, "pong", 4, 0) != 4 || recv(a, buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "pong", 4)) return 0;
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	wl_detach(argv[argc - 1]);
	const char *dir = argv[1];
	int criu = argc > 3 && !strcmp(argv[2], "criu");
	char gone[4096], gone2[4096], rpath[4096], nA[32], nB[32];
	snprintf(gone, sizeof gone, "%s/gone", dir);
	snprintf(gone2, sizeof gone2, "%s/gone2", dir);
	snprintf(rpath, sizeof rpath, "%s/r", dir);
	snprintf(nA, sizeof nA, "ubA%d", (int)getpid());
	snprintf(nB, sizeof nB, "ubB%d", (int)getpid());
	if (mkdir(gone, 0755) || mkdir(gone2, 0755)) { wl_say("error mkdir"); return 1; }
	int p[2], q[2], r[2];
	struct sockaddr_un aA, aB, aq, ar, as, al;
	socklen_t lA = abstract(&aA, nA), lB = abstract(&aB, nB), lq = pathname(&aq, dir, "gone/q"), lr = pathname(&ar, dir, "r");
	socklen_t ls = pathname(&as, dir, "gone2/s"), ll = pathname(&al, dir, "gone2/l");
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p) || socketpair(AF_UNIX, SOCK_DGRAM, 0, q) || socketpair(AF_UNIX, SOCK_DGRAM, 0, r)) { wl_say("error socketpair"); return 1; }
	if (bind(p[0], (struct sockaddr *)&aA, lA) || bind(p[1], (struct sockaddr *)&aB, lB)) { wl_say("error bind p"); return 1; }
	if (bind(q[0], (struct sockaddr *)&aq, lq) || unlink(aq.sun_path) || bind(q[1], (struct sockaddr *)&aq, lq) || unlink(aq.sun_path)) { wl_say("error bind q"); return 1; }
	if (bind(r[0], (struct sockaddr *)&ar, lr) || chmod(ar.sun_path, 0640)) { wl_say("error bind r"); return 1; }
	int s = socket(AF_UNIX, SOCK_DGRAM, 0), sc = socket(AF_UNIX, SOCK_DGRAM, 0), l = socket(AF_UNIX, SOCK_STREAM, 0), lc = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(s, (struct sockaddr *)&as, ls) || connect(sc, (struct sockaddr *)&as, ls)) { wl_say("error bind s"); return 1; }
	if (bind(l, (struct sockaddr *)&al, ll) || listen(l, 4) || connect(lc, (struct sockaddr *)&al, ll)) { wl_say("error bind l"); return 1; }
	int la = accept(l, 0, 0);
	if (la < 0) { wl_say("error accept"); return 1; }
	if (unlink(as.sun_path) || unlink(al.sun_path) || rmdir(gone) || rmdir(gone2)) { wl_say("error rmdir"); return 1; }
	if (send(p[0], "fromA", 5, 0) != 5 || send(p[1], "fromB", 5, 0) != 5 || send(q[1], "q1", 2, 0) != 2) { wl_say("error send"); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct stat st;
		if (!named(p[0], &aA, lA) || !named(p[1], &aB, lB)) bad = "p-names";
		else if (!queued(p[1], "fromA", &aA, lA, p[0]) || !queued(p[0], "fromB", &aB, lB, p[1])) bad = "p-queues";
		else if (!named(q[0], &aq, lq) || !named(q[1], &aq, lq)) bad = "q-names";
		else if (!queued(q[0], "q1", &aq, lq, q[1])) bad = "q-queue";
		else if (!named(r[0], &ar, lr) || stat(rpath, &st) || !S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0640) bad = "r-name";
		else if (!named(s, &as, ls) || !named(l, &al, ll) || (!criu && !named(la, &al, ll))) bad = "s-names";
		else if (access(gone, F_OK) == 0 || access(gone2, F_OK) == 0) bad = "dirs-back";
		else if (!talks(r[0], r[1]) || !talks(lc, la)) bad = "talk";
		else {
			char buf[8];
			if (send(sc, "sc", 2, 0) != 2 || recv(s, buf, sizeof buf, MSG_DONTWAIT) != 2) bad = "s-talk";
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
