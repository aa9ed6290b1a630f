/* A tree in a network namespace of its own holding a tun device by its file, beside a persistent
 * tap no file holds: the root unshares the namespace, brings loopback up, makes tun tn0 (IFF_TUN |
 * IFF_NO_PI, owner 1234, send buffer 123456) by its descriptor, addresses it (10.77.0.1/24) and
 * brings it up, makes tap tp1 with `ip tuntap` (persistent, user 4321, group 765, its address
 * 02:aa:bb:cc:dd:01, MTU 1400, left down) and binds a UDP socket to 10.77.0.1:5000.
 *
 *   tun STATEFILE
 *
 * SIGUSR1: "check ok" when the file is still attached to tn0 with its flags and send buffer, a
 * UDP datagram written on the file as a packet from 10.77.0.2 reaches the socket, one the socket
 * sends to 10.77.0.2 comes out of the file, and tp1 still exists (attaching to it exclusively is
 * refused as busy; it is not attached to: that would change it). */
#include "workload.h"
#include "netdev.h"
#include <errno.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>

#define SNDBUF 123456

static int tfd, usock;
static char bad[256];

static uint16_t ipsum(const void *p, size_t n) {
	const uint8_t *b = p;
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2) s += (b[i] << 8) | b[i + 1];
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* an IPv4/UDP packet 10.77.0.2:6000 -> 10.77.0.1:5000 carrying `data` (no UDP checksum) */
static size_t packet(uint8_t *p, const char *data) {
	size_t n = strlen(data), len = 28 + n;
	memset(p, 0, 28);
	p[0] = 0x45;
	p[2] = len >> 8, p[3] = len & 0xff;
	p[8] = 64, p[9] = IPPROTO_UDP;
	uint8_t src[4] = { 10, 77, 0, 2 }, dst[4] = { 10, 77, 0, 1 };
	memcpy(p + 12, src, 4), memcpy(p + 16, dst, 4);
	uint16_t s = ipsum(p, 20);
	p[10] = s >> 8, p[11] = s & 0xff;
	p[20] = 6000 >> 8, p[21] = 6000 & 0xff, p[22] = 5000 >> 8, p[23] = 5000 & 0xff;
	p[24] = (8 + n) >> 8, p[25] = (8 + n) & 0xff;
	memcpy(p + 28, data, n);
	return len;
}

static int readable(int fd) {
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 2000) == 1;
}

static const char *check(void) {
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	if (ioctl(tfd, TUNGETIFF, &ifr) || strcmp(ifr.ifr_name, "tn0") || !(ifr.ifr_flags & IFF_TUN) || (ifr.ifr_flags & IFF_TAP)) {
		snprintf(bad, sizeof bad, "file attached to %s flags %#x", ifr.ifr_name, ifr.ifr_flags & 0xffff);
		return bad;
	}
	int sb = 0;
	if (ioctl(tfd, TUNGETSNDBUF, &sb) || sb != SNDBUF) {
		snprintf(bad, sizeof bad, "sndbuf %d", sb);
		return bad;
	}
	/* in: a packet written on the file reaches the socket */
	uint8_t p[2048];
	size_t n = packet(p, "ping");
	char r[16] = "";
	if (write(tfd, p, n) != (ssize_t)n) return "write on the file";
	if (!readable(usock) || recv(usock, r, sizeof r - 1, 0) != 4 || strcmp(r, "ping")) return "the datagram written on the file did not reach the socket";
	/* out: a datagram sent to 10.77.0.2 comes out of the file (other packets, such as IPv6 ones, skipped) */
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(6000), .sin_addr.s_addr = htonl(0x0a4d0002) };
	if (sendto(usock, "pong", 4, 0, (struct sockaddr *)&to, sizeof to) != 4) return "sendto 10.77.0.2";
	int got = 0;
	for (int i = 0; i < 20 && !got; i++) {
		if (!readable(tfd)) break;
		ssize_t l = read(tfd, p, sizeof p);
		if (l == 32 && p[0] == 0x45 && p[9] == IPPROTO_UDP && !memcmp(p + 28, "pong", 4)) got = 1;
	}
	if (!got) return "the datagram sent to 10.77.0.2 did not come out of the file";
	/* the persistent tap, no file attached to it */
	int t = open("/dev/net/tun", O_RDWR);
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "tp1");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
	if (t < 0 || ioctl(t, TUNSETIFF, &ifr) == 0) {
		if (t >= 0) close(t);
		return "tp1 gone (attached exclusively)";
	}
	int busy = errno == EBUSY;
	close(t);
	return busy ? NULL : "tp1: attaching exclusively failed, but not as a device that exists would";
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWNET) || wl_lo_up()) {
		wl_say("error unshare");
		return 1;
	}
	tfd = open("/dev/net/tun", O_RDWR);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "tn0");
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	int sb = SNDBUF;
	if (tfd < 0 || ioctl(tfd, TUNSETIFF, &ifr) || ioctl(tfd, TUNSETOWNER, 1234) || ioctl(tfd, TUNSETSNDBUF, &sb)) {
		wl_say("error tun");
		return 1;
	}
	if (system("PATH=/usr/sbin:/sbin:$PATH; ip addr add 10.77.0.1/24 dev tn0 && ip link set tn0 up && "
		   "ip tuntap add tp1 mode tap user 4321 group 765 && ip link set tp1 address 02:aa:bb:cc:dd:01 mtu 1400")) {
		wl_say("error ip");
		return 1;
	}
	usock = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5000), .sin_addr.s_addr = htonl(0x0a4d0001) };
	if (bind(usock, (struct sockaddr *)&a, sizeof a)) {
		wl_say("error bind");
		return 1;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	wl_answer(check);
}
