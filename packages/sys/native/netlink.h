// One netlink request and its answers, for the sock_diag dumps (sockets.cc) and rtnetlink
// (netns.cc): the loop that sends it, reads the answers and stops where netlink says it ends.
#pragma once

#include <cerrno>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <vector>

namespace crtools::sys {

// Send req on the netlink socket nl and hand each answer to each(h) until NLMSG_DONE, an
// NLMSG_ERROR (an acknowledgement when its error is 0) or, with once, the first answer.
// Returns 0, or the errno of what failed with *sc naming it (`what` for netlink's own error).
template <typename F>
int NetlinkRequest(int nl, const void *req, size_t len, bool once, const char *what, const char **sc, F each) {
  if (send(nl, req, len, 0) < 0) {
    *sc = "send";
    return errno;
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(nl, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *sc = "recv";
      return errno;
    }
    if (n == 0) return 0;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf.data(); NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (e) *sc = what;
        return e;
      }
      each(h);
      if (once) return 0;
    }
  }
}

}  // namespace crtools::sys
