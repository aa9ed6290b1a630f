/* A tree in network, mount and pid namespaces of its own (`unshare --net --pid --fork
 * --mount-proc`'s shape) whose child made a network namespace below it (unshare(CLONE_NEWNET)
 * after fork): crtools issue 17, nested network namespaces. The init brings its loopback up and
 * binds an abstract unix datagram socket "@netsub-0"; the child, in its own namespace, brings
 * loopback up, gives it 10.7.0.1/24 (`ip`), sets net sysctls there (unix max_dgram_qlen 77,
 * ipv4 conf lo arp_ignore 2) that the init's namespace does not have, listens on TCP
 * 10.7.0.1:7007 and binds "@netsub-1"; then it forks a grandchild that goes back to the init's
 * namespace (setns) holding "@netsub-1", which the child closes (the socket stays in the child's
 * namespace: only the grandchild holds it). Then the outside parent says "ready pid=<init as
 * crtools sees it>" and exits.
 *
 *   netsub STATEFILE
 *
 * SIGUSR1 (to the init): "check ok" when the init is pid 1 in another network namespace than
 * the child's, reaches "@netsub-0" and not "@netsub-1", its sysctls are the defaults; and the
 * child (asked through a pipe) finds lo up with 10.7.0.1/24, its sysctls, its listener taking a
 * connection, "@netsub-1" reachable and "@netsub-0" not; and the grandchild (asked by the child)
 * lives in the init's namespace, reaches "@netsub-0" and not "@netsub-1", and its socket is
 * still bound to "@netsub-1".
 *
 *   netsub --sockets STATE
 *
 * The same, and the child also holds, in its namespace: both ends of a TCP connection to its
 * listener (8 bytes sent each way and not read yet), a netlink (NETLINK_ROUTE) socket and a packet
 * socket bound to lo (protocol 0: it receives nothing). Its check then finds each of them in its
 * namespace's /proc/self/net tables, reads the bytes the last check sent (or the set-up) and
 * sends the next ones, its netlink socket at its port id, its packet socket bound to lo. */
#include "workload.h"
#include "mntdir.h"
#include "netdev.h"
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <linux/netlink.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>

#define PORT 7007

static socklen_t abstract(struct sockaddr_un *a, int n) {
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int len = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "netsub-%d", n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int bound(int n) {
	struct sockaddr_un a;
	socklen_t l = abstract(&a, n);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, l)) return -1;
	return s;
}

/* 1: a datagram socket connects to "@netsub-N" here; 0: refused (not in this namespace); -1 otherwise */
static int reaches(int n) {
	struct sockaddr_un a;
	socklen_t l = abstract(&a, n);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	int r = connect(s, (struct sockaddr *)&a, l) == 0 ? 1 : errno == ECONNREFUSED ? 0 : -1;
	close(s);
	return r;
}

static int sysctl_is(const char *p, const char *v) {
	char b[64] = "";
	return wl_read_file(p, b, sizeof b) == 0 && strcmp(b, v) == 0;
}

static const char *QLEN = "/proc/sys/net/unix/max_dgram_qlen", *ARP = "/proc/sys/net/ipv4/conf/lo/arp_ignore";

/* lo up with 10.7.0.1/24 */
static int address_ok(void) {
	struct ifaddrs *ifa, *i;
	int found = 0;
	if (getifaddrs(&ifa)) return 0;
	for (i = ifa; i; i = i->ifa_next) {
		if (strcmp(i->ifa_name, "lo") || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) continue;
		if (ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) == 0x0a070001 && ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr) == 0xffffff00) found = 1;
	}
	freeifaddrs(ifa);
	return found;
}

static int same_net(const char *a, const char *b) {
	char la[64] = "", lb[64] = "";
	if (readlink(a, la, sizeof la - 1) < 0 || readlink(b, lb, sizeof lb - 1) < 0) return -1;
	return strcmp(la, lb) == 0;
}

/* one line from fd (without its newline) */
static void line_from(int fd, char *line, size_t n) {
	size_t k = 0;
	while (k < n - 1 && read(fd, line + k, 1) == 1 && line[k] != '\n') k++;
	line[k] = 0;
}

static const char *grandchild_check(int sk) {
	struct sockaddr_un a, want;
	socklen_t l = sizeof a, wl = abstract(&want, 1);
	if (same_net("/proc/self/ns/net", "/proc/1/ns/net") != 1) return "grandchild: not in the init's network namespace";
	if (reaches(0) != 1) return "grandchild: @netsub-0 not reached";
	if (reaches(1) != 0) return "grandchild: @netsub-1 reached from the init's namespace";
	if (getsockname(sk, (struct sockaddr *)&a, &l) || l != wl || memcmp(&a, &want, l)) return "grandchild: its socket is not bound to @netsub-1";
	return 0;
}

static void grandchild_main(int ask, int answer, int sk) {
	int fd = open("/proc/1/ns/net", O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) _exit(1);
	close(fd);
	if (write(answer, "k", 1) != 1) _exit(1);
	for (;;) {
		char c;
		if (read(ask, &c, 1) != 1) _exit(0);
		const char *bad = grandchild_check(sk);
		dprintf(answer, "%s\n", bad ? bad : "ok");
	}
}

/* --sockets: the child's connection (client and accepted ends), netlink and packet sockets */
static int with_sockets, tc = -1, ts = -1, nl = -1, pk = -1, seq;
static unsigned nl_port;

/* the socket at fd is listed in this namespace's /proc/self/net/TABLE (by its inode) */
static int in_table(const char *table, int fd) {
	static char buf[1 << 16];
	char path[64], a[32], b[32];
	struct stat st;
	snprintf(path, sizeof path, "/proc/self/net/%s", table);
	if (fstat(fd, &st)) return 0;
	int f = open(path, O_RDONLY);
	if (f < 0) return 0;
	size_t k = 0;
	ssize_t r;
	while (k < sizeof buf - 1 && (r = read(f, buf + k, sizeof buf - 1 - k)) > 0) k += (size_t)r;
	close(f);
	buf[k] = 0;
	snprintf(a, sizeof a, " %lu ", (unsigned long)st.st_ino);
	snprintf(b, sizeof b, " %lu\n", (unsigned long)st.st_ino);
	return strstr(buf, a) || strstr(buf, b);
}

static int send_msg(int fd, char tag, int n) {
	char m[9];
	snprintf(m, sizeof m, "%c%07d", tag, n);
	return write(fd, m, 8) == 8;
}

/* the 8 bytes send_msg(tag, n) sent come in (within 3 s) */
static int got_msg(int fd, char tag, int n) {
	char want[9], got[9];
	size_t k = 0;
	snprintf(want, sizeof want, "%c%07d", tag, n);
	while (k < 8) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 3000) != 1) return 0;
		ssize_t r = read(fd, got + k, 8 - k);
		if (r <= 0) return 0;
		k += (size_t)r;
	}
	return memcmp(got, want, 8) == 0;
}

static int lo_index(void) {
	return (int)if_nametoindex("lo");
}

/* the connection to listener l, the netlink and packet sockets; the first bytes sent each way */
static const char *sockets_setup(int l) {
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(0x0a070001) };
	tc = socket(AF_INET, SOCK_STREAM, 0);
	if (tc < 0 || connect(tc, (struct sockaddr *)&a, sizeof a)) return "connect";
	ts = accept(l, 0, 0);
	if (ts < 0) return "accept";
	struct sockaddr_nl n = { .nl_family = AF_NETLINK };
	socklen_t nlen = sizeof n;
	nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (nl < 0 || bind(nl, (struct sockaddr *)&n, sizeof n) || getsockname(nl, (struct sockaddr *)&n, &nlen)) return "netlink";
	nl_port = n.nl_pid;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = lo_index() };
	pk = socket(AF_PACKET, SOCK_RAW, 0);
	if (pk < 0 || bind(pk, (struct sockaddr *)&ll, sizeof ll)) return "packet";
	if (!send_msg(tc, 'c', 0) || !send_msg(ts, 's', 0)) return "send";
	return 0;
}

static const char *sockets_check(void) {
	struct sockaddr_nl n;
	struct sockaddr_ll ll;
	socklen_t nlen = sizeof n, llen = sizeof ll;
	if (!in_table("tcp", tc) || !in_table("tcp", ts)) return "child: its TCP connection is not in its namespace";
	if (!in_table("netlink", nl)) return "child: its netlink socket is not in its namespace";
	if (!in_table("packet", pk)) return "child: its packet socket is not in its namespace";
	if (!got_msg(ts, 'c', seq) || !got_msg(tc, 's', seq)) return "child: the bytes sent on its connection did not come";
	seq++;
	if (!send_msg(tc, 'c', seq) || !send_msg(ts, 's', seq)) return "child: send on its connection";
	if (getsockname(nl, (struct sockaddr *)&n, &nlen) || n.nl_pid != nl_port) return "child: its netlink socket's port id";
	if (getsockname(pk, (struct sockaddr *)&ll, &llen) || ll.sll_ifindex != lo_index()) return "child: its packet socket is not bound to lo";
	return 0;
}

static const char *child_check(int l, int gask, int ganswer, char *line, size_t n) {
	if (same_net("/proc/self/ns/net", "/proc/1/ns/net") != 0) return "child: in the init's network namespace";
	if (!address_ok()) return "child: lo up with 10.7.0.1/24";
	if (!sysctl_is(QLEN, "77") || !sysctl_is(ARP, "2")) return "child: sysctls";
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(0x0a070001) };
	int ok = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
	close(c);
	int got = ok ? accept(l, 0, 0) : -1;
	if (got < 0) return "child: listener on 10.7.0.1";
	close(got);
	if (reaches(1) != 1) return "child: @netsub-1 not reached";
	if (reaches(0) != 0) return "child: @netsub-0 reached from the child's namespace";
	if (with_sockets) {
		const char *bad = sockets_check();
		if (bad) return bad;
	}
	if (write(gask, "?", 1) != 1) return "child: ask the grandchild";
	line_from(ganswer, line, n);
	return strcmp(line, "ok") ? line : 0;
}

static void child_main(int ask, int answer) {
	char line[256];
	if (unshare(CLONE_NEWNET) || wl_lo_up() || system("PATH=/usr/sbin:/sbin:$PATH; ip addr add 10.7.0.1/24 dev lo") ||
	    wl_write_file(QLEN, "77") || wl_write_file(ARP, "2")) {
		dprintf(answer, "error child set-up: %s\n", strerror(errno));
		_exit(1);
	}
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(0x0a070001) };
	int sk = bound(1);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8) || sk < 0) {
		dprintf(answer, "error child sockets: %s\n", strerror(errno));
		_exit(1);
	}
	int gask[2], ganswer[2];
	if (pipe(gask) || pipe(ganswer)) _exit(1);
	pid_t g = fork();
	if (g == 0) {
		close(ask), close(answer), close(l), close(gask[1]), close(ganswer[0]);
		grandchild_main(gask[0], ganswer[1], sk);
	}
	close(sk), close(gask[0]), close(ganswer[1]);
	char c = 0;
	if (read(ganswer[0], &c, 1) != 1 || c != 'k') _exit(1);
	if (with_sockets) {
		const char *bad = sockets_setup(l);
		if (bad) {
			dprintf(answer, "error child sockets: %s: %s\n", bad, strerror(errno));
			_exit(1);
		}
	}
	if (write(answer, "k", 1) != 1) _exit(1);
	for (;;) {
		if (read(ask, &c, 1) != 1) _exit(0);
		const char *bad = child_check(l, gask[1], ganswer[0], line, sizeof line);
		dprintf(answer, "%s\n", bad ? bad : "ok");
	}
}

static int init_main(int ready) {
	if (wl_init_tree_ns())
		return 1;
	int sk = bound(0);
	if (wl_lo_up() || sk < 0) {
		wl_say("error init set-up: %s", strerror(errno));
		return 1;
	}
	int ask[2], answer[2];
	if (pipe(ask) || pipe(answer)) return 1;
	pid_t kid = fork();
	if (kid == 0) {
		close(ready), close(sk), close(ask[1]), close(answer[0]);
		child_main(ask[0], answer[1]);
	}
	close(ask[0]), close(answer[1]);
	char c[256] = "";
	if (read(answer[0], c, 1) != 1 || c[0] != 'k') {
		line_from(answer[0], c + 1, sizeof c - 1);
		wl_say("error child: %s", c);
		return 1;
	}
	if (write(ready, "k", 1) != 1) return 1;
	close(ready);
	for (;;) {
		wl_wait_check();
		char line[256] = "", kidns[64];
		const char *bad = 0;
		snprintf(kidns, sizeof kidns, "/proc/%d/ns/net", (int)kid);
		if (getpid() != 1) bad = "not pid 1";
		else if (waitpid(kid, 0, WNOHANG) != 0) bad = "child gone";
		else if (same_net("/proc/self/ns/net", kidns) != 0) bad = "init: in the child's network namespace";
		else if (reaches(0) != 1 || reaches(1) != 0) bad = "init: @netsub-0 not reached, or @netsub-1 reached";
		else if (sysctl_is(QLEN, "77") || sysctl_is(ARP, "2")) bad = "init: the child's sysctls in the init's namespace";
		else if (write(ask[1], "?", 1) != 1) bad = "ask";
		else {
			line_from(answer[0], line, sizeof line);
			if (strcmp(line, "ok")) bad = line;
		}
		if (bad) wl_say("check bad: %s", bad);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *state = argv[argc - 1];
	// (--sockets reaches the init through its exec as NETSUB_SOCKETS)
	if (argc == 3 && strcmp(argv[1], "--sockets") == 0) setenv("NETSUB_SOCKETS", "1", 1);
	with_sockets = getenv("NETSUB_SOCKETS") != 0;
	snprintf(dir, sizeof dir, "%s", state);
	if (argc == 4 && strcmp(argv[1], "--init") == 0) {
		wl_state = state;
		return init_main(atoi(argv[2]));
	}
	wl_detach(state);
	return wl_exec_ns_init(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET, argv[0], state);
}
