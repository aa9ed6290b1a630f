/* othersocks MODE [ECHOPORT] STATEFILE: sockets that are not unix or TCP ones.
 *  echo: a UDP echo server on 127.0.0.1 (outside the tree under test); says "ready pid=N port=P".
 *  all:  a connected UDP pair (IPv4) and one (IPv6 ::1), a UDP socket connected to the echo server
 *        at ECHOPORT and an IPv6 one connected to it through ::ffff:127.0.0.1, two more connected to
 *        it and shut down (one for reading, one for writing), a connected UDP-lite
 *        pair, ping sockets (IPv4 connected to 127.0.0.1, IPv6 not connected), raw sockets (ICMP
 *        with a filter, TOS and TTL; UDP with IP_HDRINCL bound to 127.0.0.5 and connected; ICMPv6
 *        with a filter), a packet socket (bound to lo for a local ethertype, TPACKET_V2, aux data,
 *        a multicast address, fanout group 77 by hash with rollover), two SOCK_PACKET ones (one
 *        bound to lo by name, one not) and a route netlink socket bound to groups 23 and 34, with
 *        NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK and NETLINK_NO_ENOBUFS on.
 *  criu: the same without what CRIU 4.2 cannot take (netlink groups past 32, packet fanout,
 *        netlink options) or
 *        loses (a ping or raw socket's connection: its images have them unconnected).
 *  ring: a packet socket with an RX ring it does not map (held, nothing else).
 *  Refusals: udpqueue (a datagram waiting to be read), nlqueue (a netlink reply unread),
 *  nldgram (a SOCK_DGRAM netlink socket).
 * On SIGUSR1 every socket is made to work: the pairs talk both ways, the echo server answers,
 * both pings get their replies, the packet socket gets the frame it sends on lo (and so do the
 * SOCK_PACKET ones, each bound as it was), the netlink
 * socket gets RTM_NEWLINK for lo and has its options as set; "check ok" or "check bad what=...". */
#include "workload.h"
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define ETHERTYPE_LOCAL 0x88b5
/* (linux/icmp.h clashes with net/if.h) */
#define ICMP_ECHO 8
#define ICMP_ECHOREPLY 0
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
#define ICMP_FILTER 1
#define ICMP6_FILTER 1
struct icmp_filter { unsigned int data; };

static int recv_wait(int fd, void *buf, size_t len) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1) return -1;
	return (int)recv(fd, buf, len, MSG_DONTWAIT);
}

static void lo4(struct sockaddr_in *a, const char *ip, int port) {
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, ip, &a->sin_addr);
}

static void lo6(struct sockaddr_in6 *a, const char *ip, int port) {
	memset(a, 0, sizeof *a);
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((unsigned short)port);
	inet_pton(AF_INET6, ip, &a->sin6_addr);
}

/* a pair of datagram sockets of (family, proto) on the loopback, connected to each other */
static int dgram_pair(int family, int proto, int sv[2]) {
	struct sockaddr_storage a[2];
	socklen_t l = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	for (int i = 0; i < 2; i++) {
		sv[i] = socket(family, SOCK_DGRAM, proto);
		if (sv[i] < 0) return -1;
		if (family == AF_INET) lo4((struct sockaddr_in *)&a[i], "127.0.0.1", 0);
		else lo6((struct sockaddr_in6 *)&a[i], "::1", 0);
		if (bind(sv[i], (struct sockaddr *)&a[i], l)) return -1;
		socklen_t al = l;
		getsockname(sv[i], (struct sockaddr *)&a[i], &al);
	}
	if (connect(sv[0], (struct sockaddr *)&a[1], l) || connect(sv[1], (struct sockaddr *)&a[0], l)) return -1;
	return 0;
}

static int pair_talks(int sv[2]) {
	char buf[32];
	if (send(sv[0], "ping-a", 6, 0) != 6 || recv_wait(sv[1], buf, sizeof buf) != 6 || memcmp(buf, "ping-a", 6)) return 0;
	if (send(sv[1], "ping-b", 6, 0) != 6 || recv_wait(sv[0], buf, sizeof buf) != 6 || memcmp(buf, "ping-b", 6)) return 0;
	return 1;
}

static int echo_answers(int fd) {
	char buf[32];
	return send(fd, "echo-me", 7, 0) == 7 && recv_wait(fd, buf, sizeof buf) == 7 && !memcmp(buf, "echo-me", 7);
}

/* an echo request through a ping socket (connected: send; else sendto `to`), its reply's type */
static int ping_once(int fd, int v6, const struct sockaddr *to, socklen_t tl, unsigned short seq) {
	unsigned char pkt[16] = {0}, buf[64];
	pkt[0] = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO;
	pkt[6] = (unsigned char)(seq >> 8);
	pkt[7] = (unsigned char)seq;
	memcpy(pkt + 8, "crtools!", 8);
	if ((to ? sendto(fd, pkt, sizeof pkt, 0, to, tl) : send(fd, pkt, sizeof pkt, 0)) != (ssize_t)sizeof pkt) return 0;
	int n = recv_wait(fd, buf, sizeof buf);
	return n == (int)sizeof pkt && buf[0] == (v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHOREPLY) && buf[6] == pkt[6] && buf[7] == pkt[7];
}

static int packet_sock(int ring, int fanout) {
	int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETHERTYPE_LOCAL));
	if (fd < 0) return -1;
	int v = TPACKET_V2, one = 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) || setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one)) return -1;
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_LOCAL), .sll_ifindex = (int)if_nametoindex("lo")};
	if (bind(fd, (struct sockaddr *)&ll, sizeof ll)) return -1;
	struct packet_mreq mr = {.mr_ifindex = ll.sll_ifindex, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6, .mr_address = {0x01, 0x00, 0x5e, 0x7f, 0x00, 0x42}};
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) return -1;
	if (fanout) {
		int f = 77 | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_ROLLOVER) << 16);
		if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &f, sizeof f)) return -1;
	}
	if (ring) {
		struct tpacket_req req = {.tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 4};
		if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) return -1;
	}
	return fd;
}

static int packet_loops(int fd) {
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_LOCAL), .sll_ifindex = (int)if_nametoindex("lo"), .sll_halen = 6};
	char buf[64];
	if (sendto(fd, "frame-on-lo", 11, 0, (struct sockaddr *)&to, sizeof to) != 11) return 0;
	/* the frame comes back from lo; drain whatever copies there are */
	int n = recv_wait(fd, buf, sizeof buf), ok = n == 11 && !memcmp(buf, "frame-on-lo", 11);
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	return ok;
}

/* a SOCK_PACKET socket for the local ethertype, bound to `dev` by name ("": not bound) */
static int spkt_sock(const char *dev) {
	int fd = socket(AF_PACKET, SOCK_PACKET, htons(ETHERTYPE_LOCAL));
	if (fd < 0 || !*dev) return fd;
	struct sockaddr a = {.sa_family = AF_PACKET};
	strcpy(a.sa_data, dev);
	return bind(fd, &a, sizeof a) ? -1 : fd;
}

/* the SOCK_PACKET socket is bound to `dev` ("": none) and has the frame packet_loops sent
 * waiting (drained, with any other copy) */
static int spkt_ok(int fd, const char *dev) {
	struct sockaddr a;
	socklen_t l = sizeof a;
	char buf[128];
	if (getsockname(fd, &a, &l) || a.sa_family != AF_PACKET || strcmp(a.sa_data, dev)) return 0;
	int n = recv_wait(fd, buf, sizeof buf), ok = n >= 14 + 11 && !memcmp(buf + n - 11, "frame-on-lo", 11);
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	return ok;
}

static int netlink_sock(int type, int groups_past_32) {
	int fd = socket(AF_NETLINK, type, NETLINK_ROUTE);
	if (fd < 0) return -1;
	struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = 1u << (23 - 1)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a)) return -1;
	int g = 34;
	if (groups_past_32 && setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g)) return -1;
	/* what iproute2 sets (CRIU 4.2 has no field for them: 'all' only) */
	int one = 1;
	if (groups_past_32 && (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) || setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one) ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one))) return -1;
	return fd;
}

/* the netlink options netlink_sock set: 1 when all are as it set them (off without groups_past_32) */
static int netlink_opts_ok(int fd, int on) {
	int opts[] = {NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, NETLINK_NO_ENOBUFS, NETLINK_PKTINFO, NETLINK_CAP_ACK};
	for (unsigned i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		int v = -1;
		socklen_t l = sizeof v;
		if (getsockopt(fd, SOL_NETLINK, opts[i], &v, &l)) return 0;
		if (v != (on && i < 3)) return 0;
	}
	return 1;
}

static int getlink_send(int fd) {
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 7}, .i = {.ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex("lo")}};
	struct sockaddr_nl k = {.nl_family = AF_NETLINK};
	return sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&k, sizeof k) == (ssize_t)sizeof req;
}

static int getlink_answers(int fd) {
	char buf[8192];
	if (!getlink_send(fd)) return 0;
	int n = recv_wait(fd, buf, sizeof buf);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	return n >= (int)sizeof *h && h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 7;
}

static int echo_server(void) {
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a;
	lo4(&a, "127.0.0.1", 0);
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l) || getsockname(fd, (struct sockaddr *)&a, &l)) return 1;
	wl_say("ready pid=%d port=%d", (int)getpid(), ntohs(a.sin_port));
	for (;;) {
		char buf[256];
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
		if (n >= 0) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *mode = argv[1];
	wl_detach(argv[argc - 1]);
	if (!strcmp(mode, "echo")) return echo_server();
	/* the refusals: each says "check ok" while what it holds is still there */
	int held = -1;
	if (!strcmp(mode, "udpqueue")) {
		int sv[2];
		if (dgram_pair(AF_INET, 0, sv) || send(sv[0], "unread", 6, 0) != 6) { wl_say("error udpqueue"); return 1; }
		held = sv[1];
	} else if (!strcmp(mode, "nlqueue") || !strcmp(mode, "nldgram")) {
		int q = !strcmp(mode, "nlqueue");
		held = netlink_sock(q ? SOCK_RAW : SOCK_DGRAM, 0);
		if (held < 0 || (q && !getlink_send(held))) { wl_say("error netlink"); return 1; }
		if (!q) held = -2;
	} else if (!strcmp(mode, "ring")) {
		if (packet_sock(1, 0) < 0) { wl_say("error ring %d", errno); return 1; }
		held = -2;
	}
	if (held != -1) {
		usleep(100000);
		wl_handle_usr1();
		wl_say("ready pid=%d", (int)getpid());
		for (;;) {
			wl_wait_check();
			char buf[64];
			struct pollfd p = {.fd = held, .events = POLLIN};
			if (held >= 0 && (poll(&p, 1, 0) != 1 || recv(held, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) <= 0)) wl_say("check bad what=queue");
			else wl_say("check ok");
		}
	}
	int all = !strcmp(mode, "all");
	if (!all && strcmp(mode, "criu")) return 2;
	if (argc < 4) return 2;
	int echo_port = atoi(argv[2]);

	int u4[2], u6[2], lite[2];
	if (dgram_pair(AF_INET, 0, u4) || dgram_pair(AF_INET6, 0, u6) || dgram_pair(AF_INET, IPPROTO_UDPLITE, lite)) { wl_say("error pairs %d", errno); return 1; }
	struct sockaddr_in echo4;
	struct sockaddr_in6 echo6;
	lo4(&echo4, "127.0.0.1", echo_port);
	lo6(&echo6, "::ffff:127.0.0.1", echo_port);
	int out4 = socket(AF_INET, SOCK_DGRAM, 0), out6 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (out4 < 0 || out6 < 0 || connect(out4, (struct sockaddr *)&echo4, sizeof echo4) || connect(out6, (struct sockaddr *)&echo6, sizeof echo6)) { wl_say("error outside %d", errno); return 1; }
	if (!echo_answers(out4) || !echo_answers(out6)) { wl_say("error echo"); return 1; }
	/* two more ends connected outside, one shut down for reading, one for writing */
	int shut_rd = socket(AF_INET, SOCK_DGRAM, 0), shut_wr = socket(AF_INET, SOCK_DGRAM, 0);
	if (shut_rd < 0 || shut_wr < 0 || connect(shut_rd, (struct sockaddr *)&echo4, sizeof echo4) || connect(shut_wr, (struct sockaddr *)&echo4, sizeof echo4) ||
	    shutdown(shut_rd, SHUT_RD) || shutdown(shut_wr, SHUT_WR)) { wl_say("error shutdown %d", errno); return 1; }

	struct sockaddr_in lo;
	struct sockaddr_in6 lo_6;
	lo4(&lo, "127.0.0.1", 0);
	lo6(&lo_6, "::1", 0);
	int ping4 = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), ping6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	/* (CRIU 4.2 does not see a ping socket's connection: connected only in mode all) */
	if (ping4 < 0 || ping6 < 0 || (all && connect(ping4, (struct sockaddr *)&lo, sizeof lo))) { wl_say("error ping %d", errno); return 1; }
	const struct sockaddr *ping4_to = all ? 0 : (struct sockaddr *)&lo;
	if (!ping_once(ping4, 0, ping4_to, sizeof lo, 1) || !ping_once(ping6, 1, (struct sockaddr *)&lo_6, sizeof lo_6, 1)) { wl_say("error first ping"); return 1; }

	int raw_icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), raw_udp = socket(AF_INET, SOCK_RAW, IPPROTO_UDP), raw6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	if (raw_icmp < 0 || raw_udp < 0 || raw6 < 0) { wl_say("error raw %d", errno); return 1; }
	struct icmp_filter filt = {.data = ~0u};
	struct icmp6_filter { unsigned int data[8]; } filt6;
	memset(&filt6, 0xff, sizeof filt6);
	int tos = 0x10, ttl = 33, one = 1;
	struct sockaddr_in r5, r6;
	lo4(&r5, "127.0.0.5", 0);
	lo4(&r6, "127.0.0.6", 0);
	if (setsockopt(raw_icmp, SOL_RAW, ICMP_FILTER, &filt, sizeof filt) || setsockopt(raw_icmp, IPPROTO_IP, IP_TOS, &tos, sizeof tos) ||
	    setsockopt(raw_icmp, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) || setsockopt(raw_udp, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) ||
	    bind(raw_udp, (struct sockaddr *)&r5, sizeof r5) || (all && connect(raw_udp, (struct sockaddr *)&r6, sizeof r6)) ||
	    setsockopt(raw6, IPPROTO_ICMPV6, ICMP6_FILTER, &filt6, sizeof filt6)) { wl_say("error raw options %d", errno); return 1; }

	int pk = packet_sock(0, all);
	int nl = netlink_sock(SOCK_RAW, all);
	if (pk < 0 || nl < 0) { wl_say("error packet/netlink %d", errno); return 1; }
	/* SOCK_PACKET: one bound to lo, one not (zdtm packet_sock_spkt): each takes the frame too */
	int spkt_lo = spkt_sock("lo"), spkt_any = spkt_sock("");
	if (spkt_lo < 0 || spkt_any < 0) { wl_say("error spkt %d", errno); return 1; }
	if (!packet_loops(pk) || !getlink_answers(nl)) { wl_say("error first packet/netlink"); return 1; }
	if (!spkt_ok(spkt_lo, "lo") || !spkt_ok(spkt_any, "")) { wl_say("error first spkt"); return 1; }

	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	unsigned short seq = 2;
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		if (!pair_talks(u4)) bad = "udp4-pair";
		else if (!pair_talks(u6)) bad = "udp6-pair";
		else if (!pair_talks(lite)) bad = "udplite-pair";
		else if (!echo_answers(out4)) bad = "udp4-outside";
		else if (!echo_answers(out6)) bad = "udp6-mapped-outside";
		else if (!ping_once(ping4, 0, ping4_to, sizeof lo, seq)) bad = "ping4";
		else if (!ping_once(ping6, 1, (struct sockaddr *)&lo_6, sizeof lo_6, seq)) bad = "ping6";
		else if (!packet_loops(pk)) bad = "packet";
		else if (!spkt_ok(spkt_lo, "lo") || !spkt_ok(spkt_any, "")) bad = "spkt";
		else if (!getlink_answers(nl)) bad = "netlink";
		else if (!netlink_opts_ok(nl, all)) bad = "netlink-options";
		seq++;
		if (!bad) {
			struct pollfd p = {.fd = shut_rd, .events = POLLRDHUP};
			if (poll(&p, 1, 0) != 1 || !(p.revents & POLLRDHUP)) bad = "udp-shut-rd";
			else if (send(shut_wr, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) bad = "udp-shut-wr";
		}
		if (!bad) {
			/* the raw sockets' settings as they were made */
			int v = 0;
			socklen_t l = sizeof v;
			struct sockaddr_in a;
			socklen_t al = sizeof a;
			if (getsockopt(raw_icmp, IPPROTO_IP, IP_TTL, &v, &l) || v != 33) bad = "raw-ttl";
			else if (getsockopt(raw_udp, IPPROTO_IP, IP_HDRINCL, &v, &l) || v != 1) bad = "raw-hdrincl";
			else if (getsockname(raw_udp, (struct sockaddr *)&a, &al) || a.sin_addr.s_addr != r5.sin_addr.s_addr) bad = "raw-bound";
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
