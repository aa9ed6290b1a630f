/* Network helpers of the workloads that make a network namespace of their own (header only). */
#ifndef CRTOOLS_NETDEV_H
#define CRTOOLS_NETDEV_H
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Loopback up in this process's network namespace: 0, or -1. */
static inline int wl_lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0) return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	int r = ioctl(s, SIOCGIFFLAGS, &ifr) || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr));
	close(s);
	return r ? -1 : 0;
}
#endif
