/* Packet sockets with mapped rings (PACKET_RX_RING / PACKET_TX_RING), for issue 15.
 *
 *   pktring rings STATE
 *     Three packet sockets (SOCK_RAW, a local ethertype, bound to lo, each with a classic BPF
 *     filter letting in only frames that carry this workload's token, so that nothing else on lo
 *     lands in its rings):
 *       v1: TPACKET_V1, an RX ring (2 blocks of 4096, 4 frames), mapped read-write;
 *       v2: TPACKET_V2, an RX ring (4 blocks of 4096, 8 frames) and a TX ring (2 blocks of 4096,
 *           4 frames), mapped as one area (RX then TX) read-write;
 *       v3: TPACKET_V3, an RX ring (4 blocks of 8192, retire timeout 10 ms), mapped read-write.
 *     "ready" once so (the rings fresh: nothing received nor sent).
 *     On SIGUSR1: each ring is still mapped at its address, of its size, with its protection,
 *     from its own socket (/proc/self/maps names the socket's inode); the rings are as fresh
 *     ones; v2 sends a frame through its TX ring (send() takes the frame, the kernel gives the
 *     frame back to the task) and the frame comes back from lo into every RX ring, where it is
 *     read (v1/v2: frame 0 handed to the task; v3: block 0 retired with one packet) and given
 *     back. Then the rings are set up again, fresh, at the same addresses, for the next round.
 *     The verdict names the first difference.
 *   pktring unmapped STATE
 *     Two such sockets: u2 (TPACKET_V2, an RX ring of 4 blocks of 4096 and a TX ring of 2) whose
 *     rings are set up and never mapped by the task, and p1 (TPACKET_V1, an RX ring of 2 blocks)
 *     mapped MAP_PRIVATE read-write (the ring's own pages show there until the task writes one).
 *     On SIGUSR1: u2 has no mapping and its rings map (only rings of their size do), p1 is
 *     mapped at its address rw-p; both fresh; a frame sent on lo lands in both RX rings (p1's
 *     seen through its private mapping); then both are set up again, fresh, as they were.
 *   pktring rxheld|txheld|used|v3open|privwritten STATE
 *     A ring the dump refuses by name: v2's RX ring holding a frame not yet read (rxheld); a
 *     frame queued in v2's TX ring, not sent (txheld); v2's RX ring that has received and given
 *     back one frame (used: the kernel's place is frame 1); v3's RX ring whose open block holds a
 *     packet not yet retired (v3open, retire timeout 60 s); v2's rings mapped private, where the
 *     task wrote a byte of the TX ring (privwritten: a copy of its own of that page). */
#include "workload.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define ETHERTYPE_RING 0x88b6
#define FRAME 2048

struct ring {
	const char *name;
	int fd, version;
	struct tpacket_req3 rx, tx;
	size_t len;
	unsigned char *map;
	unsigned long ino;
	/* how the task maps its rings: MAP_SHARED, MAP_PRIVATE, or 0 (set up, not mapped) */
	int share;
};

static int lo;
static uint32_t token;
static int bad;
static char why[300];

static void fail(const char *fmt, const char *a, long b) {
	if (bad++) return;
	snprintf(why, sizeof why, fmt, a, b);
}

static size_t bytes(const struct tpacket_req3 *r) { return (size_t)r->tp_block_size * r->tp_block_nr; }

/* set the rings (rx, tx: none when tp_block_nr is 0) and map them as r->share says at `at` (NULL: anywhere) */
static int arm(struct ring *r, void *at) {
	if (r->rx.tp_block_nr && setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &r->rx, sizeof r->rx)) return -1;
	if (r->tx.tp_block_nr && setsockopt(r->fd, SOL_PACKET, PACKET_TX_RING, &r->tx, sizeof r->tx)) return -1;
	r->len = bytes(&r->rx) + bytes(&r->tx);
	if (!r->share) return 0;
	void *m = mmap(at, r->len, PROT_READ | PROT_WRITE, r->share | (at ? MAP_FIXED : 0), r->fd, 0);
	if (m == MAP_FAILED) return -1;
	r->map = m;
	return 0;
}

/* the rings dropped and set up again, fresh, at the same address */
static int rearm(struct ring *r) {
	struct tpacket_req3 none;
	memset(&none, 0, sizeof none);
	if (r->map && munmap(r->map, r->len)) return -1;
	if (r->rx.tp_block_nr && setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &none, sizeof none)) return -1;
	if (r->tx.tp_block_nr && setsockopt(r->fd, SOL_PACKET, PACKET_TX_RING, &none, sizeof none)) return -1;
	return arm(r, r->map);
}

static int open_ring(struct ring *r, const char *name, int version, unsigned rx_blocks, unsigned rx_block, unsigned tx_blocks, unsigned retire, int share) {
	memset(r, 0, sizeof *r);
	r->name = name;
	r->share = share;
	r->version = version;
	r->fd = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE_RING));
	if (r->fd < 0) return -1;
	/* only frames whose first word after the Ethernet header is this workload's token */
	struct sock_filter code[] = {
		{BPF_LD | BPF_W | BPF_ABS, 0, 0, ETH_HLEN},
		{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, token},
		{BPF_RET | BPF_K, 0, 0, 0xffff},
		{BPF_RET | BPF_K, 0, 0, 0},
	};
	struct sock_fprog prog = {.len = 4, .filter = code};
	if (setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog)) return -1;
	if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version)) return -1;
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_RING), .sll_ifindex = lo};
	if (bind(r->fd, (struct sockaddr *)&ll, sizeof ll)) return -1;
	r->rx.tp_block_size = rx_block;
	r->rx.tp_block_nr = rx_blocks;
	r->rx.tp_frame_size = FRAME;
	r->rx.tp_frame_nr = rx_block / FRAME * rx_blocks;
	r->rx.tp_retire_blk_tov = retire;
	if (tx_blocks) {
		r->tx.tp_block_size = 4096;
		r->tx.tp_block_nr = tx_blocks;
		r->tx.tp_frame_size = FRAME;
		r->tx.tp_frame_nr = 4096 / FRAME * tx_blocks;
	}
	if (arm(r, NULL)) return -1;
	struct stat st;
	if (fstat(r->fd, &st)) return -1;
	r->ino = (unsigned long)st.st_ino;
	return 0;
}

/* an Ethernet frame of our ethertype carrying the token and `seq` */
static size_t frame(unsigned char *p, uint32_t seq) {
	memset(p, 0, 64);
	memset(p, 0xff, 6);
	p[12] = ETHERTYPE_RING >> 8;
	p[13] = ETHERTYPE_RING & 0xff;
	uint32_t t = htonl(token), s = htonl(seq);
	memcpy(p + ETH_HLEN, &t, 4);
	memcpy(p + ETH_HLEN + 4, &s, 4);
	return 64;
}

/* a frame sent by a plain packet socket, closed after */
static int send_plain(uint32_t seq) {
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) return -1;
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_RING), .sll_ifindex = lo, .sll_halen = 6};
	unsigned char p[64];
	size_t n = frame(p, seq);
	int r = sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n ? 0 : -1;
	close(fd);
	return r;
}

static int all_zero(const unsigned char *p, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (p[i]) return 0;
	return 1;
}

/* the mapping at r->map, as /proc/self/maps shows it: of r's size, rw-s (rw-p: private), of
 * r's socket; rings not mapped: no mapping of r's socket */
static void check_mapping(struct ring *r) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long s, e, ino;
		char perms[8], name[128] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %127s", &s, &e, perms, &ino, name) < 4) continue;
		if (!r->map) {
			char want[64];
			snprintf(want, sizeof want, "socket:[%lu]", r->ino);
			if (!strcmp(name, want)) fail("%s rings mapped at %lx", r->name, (long)s);
			continue;
		}
		if (s != (unsigned long)r->map) continue;
		found = 1;
		/* the socket's inode as it is now (a restore makes the socket anew) */
		struct stat st;
		char want[64];
		if (fstat(r->fd, &st) == 0) r->ino = (unsigned long)st.st_ino;
		snprintf(want, sizeof want, "socket:[%lu]", r->ino);
		if (e - s != r->len) fail("%s ring area of %ld bytes", r->name, (long)(e - s));
		else if (strcmp(perms, r->share == MAP_PRIVATE ? "rw-p" : "rw-s")) fail("ring area mapped %s (%ld)", perms, 0);
		else if (strcmp(name, want)) fail("ring area maps %s (%ld)", name, 0);
	}
	if (f) fclose(f);
	if (!found && r->map) fail("%s ring not mapped at its address", r->name, 0);
}

/* v1/v2 RX frame 0 (the kernel's first): wait for the frame, check its token and seq, give it back */
static void read_frame0(struct ring *r, uint32_t seq) {
	volatile unsigned char *h = r->map;
	unsigned off = 0;
	for (int i = 0; i < 200; i++) {
		unsigned long status = r->version == TPACKET_V1 ? ((volatile struct tpacket_hdr *)h)->tp_status : ((volatile struct tpacket2_hdr *)h)->tp_status;
		if (status & TP_STATUS_USER) break;
		usleep(10000);
	}
	if (r->version == TPACKET_V1) {
		struct tpacket_hdr *t = (struct tpacket_hdr *)r->map;
		if (!(t->tp_status & TP_STATUS_USER)) return fail("%s: no frame in the RX ring", r->name, 0);
		off = t->tp_mac;
	} else {
		struct tpacket2_hdr *t = (struct tpacket2_hdr *)r->map;
		if (!(t->tp_status & TP_STATUS_USER)) return fail("%s: no frame in the RX ring", r->name, 0);
		off = t->tp_mac;
	}
	uint32_t t, s;
	memcpy(&t, r->map + off + ETH_HLEN, 4);
	memcpy(&s, r->map + off + ETH_HLEN + 4, 4);
	if (ntohl(t) != token || ntohl(s) != seq) fail("%s: RX frame carries seq %ld", r->name, (long)ntohl(s));
	if (r->version == TPACKET_V1) ((volatile struct tpacket_hdr *)h)->tp_status = TP_STATUS_KERNEL;
	else ((volatile struct tpacket2_hdr *)h)->tp_status = TP_STATUS_KERNEL;
}

/* v3 RX block 0: wait for it to be retired to the task with one packet, check it, give it back */
static void read_block0(struct ring *r, uint32_t seq) {
	volatile struct tpacket_block_desc *b = (volatile struct tpacket_block_desc *)r->map;
	for (int i = 0; i < 200 && !(b->hdr.bh1.block_status & TP_STATUS_USER); i++) {
		struct pollfd p = {r->fd, POLLIN, 0};
		poll(&p, 1, 10);
	}
	if (!(b->hdr.bh1.block_status & TP_STATUS_USER)) return fail("%s: block 0 not handed over", r->name, 0);
	if (b->hdr.bh1.num_pkts != 1) return fail("%s: block 0 holds %ld packets", r->name, (long)b->hdr.bh1.num_pkts);
	struct tpacket3_hdr *p = (struct tpacket3_hdr *)(r->map + b->hdr.bh1.offset_to_first_pkt);
	uint32_t t, s;
	memcpy(&t, (unsigned char *)p + p->tp_mac + ETH_HLEN, 4);
	memcpy(&s, (unsigned char *)p + p->tp_mac + ETH_HLEN + 4, 4);
	if (ntohl(t) != token || ntohl(s) != seq) fail("%s: RX packet carries seq %ld", r->name, (long)ntohl(s));
	b->hdr.bh1.block_status = TP_STATUS_KERNEL;
}

/* fresh rings: nothing written (v3's RX ring: block 0 opened by the kernel, empty, sequence 1) */
static void check_fresh(struct ring *r) {
	if (r->version == TPACKET_V3) {
		struct tpacket_block_desc *b = (struct tpacket_block_desc *)r->map;
		if (b->hdr.bh1.num_pkts || b->hdr.bh1.block_status || b->hdr.bh1.seq_num != 1 || !all_zero(r->map + r->rx.tp_block_size, bytes(&r->rx) - r->rx.tp_block_size))
			fail("%s: ring not fresh (block 0 sequence %ld)", r->name, (long)b->hdr.bh1.seq_num);
	} else if (!all_zero(r->map, r->len)) {
		fail("%s: ring not fresh", r->name, 0);
	}
}

/* v2 sends through its TX ring: frame 0 filled, queued, sent, handed back */
static void send_tx(struct ring *r, uint32_t seq) {
	unsigned char *f = r->map + bytes(&r->rx);
	struct tpacket2_hdr *h = (struct tpacket2_hdr *)f;
	unsigned char *data = f + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
	h->tp_len = (unsigned)frame(data, seq);
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	ssize_t n = send(r->fd, NULL, 0, 0);
	if (n != 64) return fail("%s: send through the TX ring gave %ld", r->name, n < 0 ? -errno : (long)n);
	for (int i = 0; i < 100 && __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE; i++) usleep(10000);
	if (h->tp_status != TP_STATUS_AVAILABLE) fail("%s: TX frame 0 status %ld", r->name, (long)h->tp_status);
}

/* mode unmapped: u2's rings set up and never mapped by the task, p1's mapped private */
static int unmapped_private(void) {
	struct ring u2, p1;
	if (open_ring(&u2, "u2", TPACKET_V2, 4, 4096, 2, 0, 0) || open_ring(&p1, "p1", TPACKET_V1, 2, 4096, 0, 0, MAP_PRIVATE)) {
		wl_say("error rings %d", errno);
		return 1;
	}
	wl_say("ready pid=%d", (int)getpid());
	for (uint32_t seq = 100;; seq++) {
		wl_wait_check();
		bad = 0;
		check_mapping(&u2);
		check_mapping(&p1);
		/* u2's rings, seen through a mapping made now (of their size only when they are that size) */
		void *m = mmap(NULL, u2.len, PROT_READ | PROT_WRITE, MAP_SHARED, u2.fd, 0);
		if (m == MAP_FAILED) fail("%s: rings cannot be mapped (%ld)", u2.name, errno);
		u2.map = m == MAP_FAILED ? NULL : m;
		if (!bad) {
			check_fresh(&u2);
			check_fresh(&p1);
		}
		/* a frame from lo lands in both RX rings: p1's private mapping shows the ring's own pages */
		if (!bad && send_plain(seq)) fail("send %s (%ld)", "plain", errno);
		if (!bad) {
			read_frame0(&u2, seq);
			read_frame0(&p1, seq);
		}
		if (u2.map) munmap(u2.map, u2.len);
		u2.map = NULL;
		/* set up again, fresh: u2 not mapped, p1 mapped private at its address (its copy of the
		 * page read_frame0 gave back dropped) */
		if (!bad && (rearm(&u2) || rearm(&p1))) fail("rings not set up again (%s %ld)", "", errno);
		if (bad) wl_say("check bad %s", why);
		else wl_say("check ok");
	}
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	wl_detach(argv[2]);
	wl_handle_usr1();
	token = 0x70000000u | (uint32_t)getpid();
	lo = (int)if_nametoindex("lo");
	struct ring v1, v2, v3;
	const char *mode = argv[1];
	if (!strcmp(mode, "unmapped")) return unmapped_private();
	if (strcmp(mode, "rings")) {
		/* the refused states, each on the one socket it is about */
		int three = !strcmp(mode, "v3open");
		int priv = !strcmp(mode, "privwritten");
		if (three ? open_ring(&v3, "v3", TPACKET_V3, 4, 8192, 0, 60000, MAP_SHARED) : open_ring(&v2, "v2", TPACKET_V2, 4, 4096, 2, 0, priv ? MAP_PRIVATE : MAP_SHARED)) {
			wl_say("error rings %d", errno);
			return 1;
		}
		if (priv) {
			/* a copy of the task's own of the TX ring's first page (its bytes unchanged) */
			v2.map[bytes(&v2.rx)] = 0;
		} else if (!strcmp(mode, "txheld")) {
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(v2.map + bytes(&v2.rx));
			h->tp_len = (unsigned)frame(v2.map + bytes(&v2.rx) + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), 1);
			h->tp_status = TP_STATUS_SEND_REQUEST;
		} else {
			if (send_plain(1)) {
				wl_say("error send %d", errno);
				return 1;
			}
			/* wait until the frame is in the ring */
			volatile struct tpacket_block_desc *b = three ? (volatile struct tpacket_block_desc *)v3.map : NULL;
			for (int i = 0; i < 200 && (three ? b->hdr.bh1.num_pkts == 0 : all_zero(v2.map, 64)); i++) usleep(10000);
			if (!strcmp(mode, "used")) read_frame0(&v2, 1);
			if (bad) {
				wl_say("error %s", why);
				return 1;
			}
		}
		wl_say("ready pid=%d", (int)getpid());
		for (;;) pause();
	}
	if (open_ring(&v1, "v1", TPACKET_V1, 2, 4096, 0, 0, MAP_SHARED) || open_ring(&v2, "v2", TPACKET_V2, 4, 4096, 2, 0, MAP_SHARED) || open_ring(&v3, "v3", TPACKET_V3, 4, 8192, 0, 10, MAP_SHARED)) {
		wl_say("error rings %d", errno);
		return 1;
	}
	wl_say("ready pid=%d", (int)getpid());
	struct ring *all[] = {&v1, &v2, &v3};
	for (uint32_t seq = 100;; seq++) {
		wl_wait_check();
		bad = 0;
		for (int i = 0; i < 3; i++) {
			check_mapping(all[i]);
			check_fresh(all[i]);
		}
		if (!bad) send_tx(&v2, seq);
		if (!bad) {
			read_frame0(&v1, seq);
			read_frame0(&v2, seq);
			read_block0(&v3, seq);
		}
		for (int i = 0; i < 3 && !bad; i++)
			if (rearm(all[i])) fail("%s: rings not set up again (%ld)", all[i]->name, errno);
		if (bad) wl_say("check bad %s", why);
		else wl_say("check ok");
	}
}
