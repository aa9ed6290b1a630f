/* A tree in a network namespace of its own: the root unshares it, brings loopback up (ioctl),
 * gives lo a second address (10.1.2.3/24) and a route (10.9.0.0/16 dev lo) with `ip`, sets net
 * sysctls of the namespace (unix max_dgram_qlen, ipv4 conf all/default/lo, ipv6 conf lo), and
 * holds a TCP listener and a UDP socket on 127.0.0.1; its child lives in the same namespace.
 * With "tcp" it also holds an established TCP connection to its own listener (both ends).
 *
 *   netns [tcp] STATEFILE
 *
 * SIGUSR1: "check ok child=1" when lo is up with both addresses, the route is there, the
 * sysctls read what it set, the listener accepts a new connection, the UDP socket gets a
 * datagram sent to it, (tcp) the connection carries a byte each way, and its child is alive in
 * the same network namespace. */
#include "workload.h"
#include <ifaddrs.h>
#include <net/if.h>
#include "netdev.h"
#include <sched.h>
#include <sys/ioctl.h>

static const struct { const char *path, *value; } SYSCTLS[] = {
	{ "/proc/sys/net/unix/max_dgram_qlen", "123" },
	{ "/proc/sys/net/ipv4/conf/all/log_martians", "1" },
	{ "/proc/sys/net/ipv4/conf/default/accept_source_route", "1" },
	{ "/proc/sys/net/ipv4/conf/lo/arp_ignore", "2" },
	{ "/proc/sys/net/ipv6/conf/lo/hop_limit", "33" },
	/* lo's IPv6 MTU below its device's: bringing lo up at restore sets it to the device's again (zdtm netns-dev) */
	{ "/proc/sys/net/ipv6/conf/lo/mtu", "1280" },
	{ "/proc/sys/net/ipv6/conf/default/hop_limit", "44" },
};

static int same_net(pid_t a, pid_t b) {
	char pa[64], pb[64], la[64] = "", lb[64] = "";
	snprintf(pa, sizeof pa, "/proc/%d/ns/net", a);
	snprintf(pb, sizeof pb, "/proc/%d/ns/net", b);
	if (readlink(pa, la, sizeof la - 1) < 0 || readlink(pb, lb, sizeof lb - 1) < 0) return 0;
	return strcmp(la, lb) == 0;
}

static struct sockaddr_in loopback(int port) {
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* lo up, with 127.0.0.1 and 10.1.2.3/24 (getifaddrs) */
static int addresses_ok(void) {
	struct ifaddrs *ifa, *i;
	int lo = 0, extra = 0;
	if (getifaddrs(&ifa)) return 0;
	for (i = ifa; i; i = i->ifa_next) {
		if (strcmp(i->ifa_name, "lo") || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
		if (!(i->ifa_flags & IFF_UP)) continue;
		uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		uint32_t m = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		if (a == 0x7f000001 && m == 0xff000000) lo = 1;
		if (a == 0x0a010203 && m == 0xffffff00) extra = 1;
	}
	freeifaddrs(ifa);
	return lo && extra;
}

/* 10.9.0.0/16 dev lo in the main table (/proc/net/route, destination in network order as hex) */
static int route_ok(void) {
	FILE *f = fopen("/proc/self/net/route", "r");
	char line[256];
	int found = 0;
	if (!f) return 0;
	while (fgets(line, sizeof line, f)) {
		char dev[32];
		unsigned dst, gw, flags, refcnt, use, metric, mask;
		if (sscanf(line, "%31s %x %x %x %u %u %u %x", dev, &dst, &gw, &flags, &refcnt, &use, &metric, &mask) != 8) continue;
		if (!strcmp(dev, "lo") && ntohl(dst) == 0x0a090000 && ntohl(mask) == 0xffff0000) found = 1;
	}
	fclose(f);
	return found;
}

static int sysctls_ok(char *bad, size_t n) {
	for (size_t i = 0; i < sizeof SYSCTLS / sizeof SYSCTLS[0]; i++) {
		char v[64] = "";
		if (wl_read_file(SYSCTLS[i].path, v, sizeof v) || strcmp(v, SYSCTLS[i].value)) {
			snprintf(bad, n, "%s=%s", SYSCTLS[i].path, v);
			return 0;
		}
	}
	return 1;
}

static int listener_ok(int port) {
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(port);
	int ok = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
	close(c);
	return ok;
}

static int udp_ok(int u, int port) {
	int c = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = loopback(port);
	char b = 'u', r = 0;
	int ok = sendto(c, &b, 1, 0, (struct sockaddr *)&a, sizeof a) == 1 && recv(u, &r, 1, 0) == 1 && r == 'u';
	close(c);
	return ok;
}

static int conn_ok(int x, int y) {
	char b = 'x', r = 0;
	if (write(x, &b, 1) != 1 || read(y, &r, 1) != 1 || r != 'x') return 0;
	b = 'y';
	return write(y, &b, 1) == 1 && read(x, &r, 1) == 1 && r == 'y';
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int tcp = argc > 2 && strcmp(argv[1], "tcp") == 0;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWNET)) {
		wl_say("error unshare");
		return 1;
	}
	if (wl_lo_up()) {
		wl_say("error lo up");
		return 1;
	}
	if (system("PATH=/usr/sbin:/sbin:$PATH; ip addr add 10.1.2.3/24 dev lo && ip route add 10.9.0.0/16 dev lo")) {
		wl_say("error ip");
		return 1;
	}
	for (size_t i = 0; i < sizeof SYSCTLS / sizeof SYSCTLS[0]; i++) {
		if (wl_write_file(SYSCTLS[i].path, SYSCTLS[i].value)) {
			wl_say("error sysctl %s", SYSCTLS[i].path);
			return 1;
		}
	}
	/* the listener and the UDP socket (ports the kernel picks) */
	int l = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = loopback(0);
	socklen_t al = sizeof a;
	if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8) || getsockname(l, (struct sockaddr *)&a, &al)) {
		wl_say("error listen");
		return 1;
	}
	int lport = ntohs(a.sin_port);
	a = loopback(0);
	al = sizeof a;
	if (bind(u, (struct sockaddr *)&a, sizeof a) || getsockname(u, (struct sockaddr *)&a, &al)) {
		wl_say("error udp");
		return 1;
	}
	int uport = ntohs(a.sin_port);
	int cx = -1, cy = -1;
	if (tcp) {
		cx = socket(AF_INET, SOCK_STREAM, 0);
		a = loopback(lport);
		if (connect(cx, (struct sockaddr *)&a, sizeof a) || (cy = accept(l, 0, 0)) < 0) {
			wl_say("error connect");
			return 1;
		}
	}
	wl_handle_usr1();
	pid_t child = fork();
	if (child == 0) {
		for (;;) pause();
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		char bad[256] = "";
		int addrs = addresses_ok(), route = route_ok(), sys = sysctls_ok(bad, sizeof bad);
		int lis = listener_ok(lport);
		if (lis) {
			/* take the connection the check made */
			int c = accept(l, 0, 0);
			if (c >= 0) close(c);
			else lis = 0;
		}
		int udp = udp_ok(u, uport);
		int conn = !tcp || conn_ok(cx, cy);
		int kid = kill(child, 0) == 0 && same_net(getpid(), child);
		if (addrs && route && sys && lis && udp && conn && kid)
			wl_say("check ok child=1");
		else
			wl_say("check bad addrs=%d route=%d sysctl=%d(%s) listen=%d udp=%d conn=%d child=%d", addrs, route, sys, bad, lis, udp, conn, kid);
	}
}
