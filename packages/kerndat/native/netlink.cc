// @crtools/kerndat: the link_nsid probe child: a veth whose peer lives in another network
// namespace, and whether RTM_GETLINK reports IFLA_LINK_NETNSID for it.
#include "kerndat.h"

#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/veth.h>

namespace crtools::kerndat {

namespace {

// ---- link_nsid: a veth whose peer lives in another network namespace is
// reported with IFLA_LINK_NETNSID. Done in a child inside two fresh network
// namespaces; both (and the veth pair) vanish when it exits.

struct nlbuf {
  char data[1024];
  size_t len;
};

struct rtattr *nl_attr(nlbuf *b, unsigned short type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(b->len);
  struct rtattr *a = (struct rtattr *)(b->data + off);
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  b->len = off + RTA_ALIGN(a->rta_len);
  return a;
}
void nl_nest_end(nlbuf *b, struct rtattr *a) { a->rta_len = (unsigned short)(b->data + b->len - (char *)a); }

// send one request; return the kernel's errno (0 = ok) or, with `reply`, copy the first answer
long nl_talk(long sk, nlbuf *b, char *reply, size_t cap) {
  struct nlmsghdr *h = (struct nlmsghdr *)b->data;
  h->nlmsg_len = (unsigned)b->len;
  if (rawsys(SYS_sendto, sk, (long)b->data, (long)b->len, 0, 0, 0) < 0) return -1000;
  static char rbuf[16384];
  long n = rawsys(SYS_recvfrom, sk, (long)rbuf, sizeof(rbuf), 0, 0, 0);
  if (n < (long)sizeof(struct nlmsghdr)) return -1001;
  struct nlmsghdr *r = (struct nlmsghdr *)rbuf;
  if (r->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
  if (reply) memcpy(reply, rbuf, (size_t)n < cap ? (size_t)n : cap);
  return 0;
}

}  // namespace

[[noreturn]] void child_link_nsid() {
  if (rawsys(SYS_unshare, CLONE_NEWNET) < 0) child_exit(10);
  long peer_ns = rawsys(SYS_open, (long)"/proc/self/ns/net", O_RDONLY, 0);
  if (peer_ns < 0) child_exit(11);
  if (rawsys(SYS_unshare, CLONE_NEWNET) < 0) child_exit(12);
  long sk = rawsys(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (sk < 0) child_exit(13);

  // RTM_NEWLINK: veth "crkd0" here, its peer "crkd1" in the first namespace
  nlbuf b;
  memset(&b, 0, sizeof(b));
  struct nlmsghdr *h = (struct nlmsghdr *)b.data;
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  h->nlmsg_seq = 1;
  b.len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  nl_attr(&b, IFLA_IFNAME, "crkd0", 6);
  struct rtattr *info = nl_attr(&b, IFLA_LINKINFO, nullptr, 0);
  nl_attr(&b, IFLA_INFO_KIND, "veth", 4);
  struct rtattr *data = nl_attr(&b, IFLA_INFO_DATA, nullptr, 0);
  struct rtattr *peer = nl_attr(&b, VETH_INFO_PEER, nullptr, 0);
  b.len += sizeof(struct ifinfomsg);  // the peer's (empty) ifinfomsg
  nl_attr(&b, IFLA_IFNAME, "crkd1", 6);
  int nsfd = (int)peer_ns;
  nl_attr(&b, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
  nl_nest_end(&b, peer);
  nl_nest_end(&b, data);
  nl_nest_end(&b, info);
  if (nl_talk(sk, &b, nullptr, 0) != 0) child_exit(14);  // no veth: cannot tell

  // RTM_GETLINK crkd0: does the answer carry IFLA_LINK_NETNSID?
  memset(&b, 0, sizeof(b));
  h = (struct nlmsghdr *)b.data;
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = 2;
  b.len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  nl_attr(&b, IFLA_IFNAME, "crkd0", 6);
  static char reply[16384];
  if (nl_talk(sk, &b, reply, sizeof(reply)) != 0) child_exit(15);
  struct nlmsghdr *r = (struct nlmsghdr *)reply;
  if (r->nlmsg_type != RTM_NEWLINK) child_exit(16);
  int len = (int)r->nlmsg_len - NLMSG_LENGTH(sizeof(struct ifinfomsg));
  for (struct rtattr *a = IFLA_RTA(NLMSG_DATA(r)); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFLA_LINK_NETNSID) child_exit(0);
  child_exit(1);
}

}  // namespace crtools::kerndat
