/* TCP helpers shared by the TCP workloads (header only): sockets with small buffers (16 KiB
 * asked each way), so that queues fill quickly; listening or connected, exiting on failure. */
#ifndef CRTOOLS_TCPWL_H
#define CRTOOLS_TCPWL_H
#include "workload.h"

#include <errno.h>
#include <netinet/tcp.h>

static inline void wl_small_bufs(int fd) {
	int v = 16384;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

/* A TCP socket listening on host:port (SO_REUSEADDR; IPV6_V6ONLY as given for IPv6). */
static inline int wl_tcp_listener(int family, const char *host, int port, int v6only, int backlog) {
	int fd = socket(family, SOCK_STREAM, 0), one = 1;
	if (fd < 0) exit(1);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	wl_small_bufs(fd);
	if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	struct sockaddr_storage ss;
	socklen_t len = wl_inet_addr(family, host, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) exit(1);
	return fd;
}

/* A TCP socket connected to host:port (tried for 2 s). */
static inline int wl_tcp_connect(int family, const char *host, int port) {
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0) exit(1);
	wl_small_bufs(fd);
	struct sockaddr_storage ss;
	socklen_t len = wl_inet_addr(family, host, port, &ss);
	for (int i = 0; i < 100; i++) {
		if (connect(fd, (struct sockaddr *)&ss, len) == 0) return fd;
		usleep(20000);
	}
	exit(1);
}

/* tcpi_state of the TCP socket at fd (TCP_INFO), -1 when it cannot be read. */
static inline int wl_tcp_state(int fd) {
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0) return -1;
	return ti.tcpi_state;
}

/* The local port of the IPv4/IPv6 socket at fd, -1 when it cannot be read. */
static inline int wl_local_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) return -1;
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Byte i of the stream a connection end sends (seed tells the streams apart). */
static inline unsigned char wl_pattern(unsigned seed, unsigned long i) { return (unsigned char)(i * 131 + (i >> 9) + seed * 29); }

/* Send the stream of `seed` on from byte *sent, until the kernel takes no more or *sent reaches
 * goal (0: none); 0, or the errno of a send that failed otherwise than EAGAIN. */
static inline int wl_stream_fill(int fd, unsigned seed, unsigned long *sent, unsigned long goal) {
	unsigned char buf[4096];
	for (;;) {
		unsigned long n = sizeof buf;
		if (goal && *sent + n > goal) n = goal - *sent;
		if (!n) return 0;
		for (unsigned long i = 0; i < n; i++) buf[i] = wl_pattern(seed, *sent + i);
		ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : errno;
		*sent += (unsigned long)w;
	}
}

#endif
