/* evpoll STATEFILE: an epoll instance (close-on-exec) watching an eventfd (counter 5,
 * non-blocking; data 0x1122334455667788), the read end of a pipe holding one byte (edge-
 * triggered; data = its fd) and a signalfd for SIGUSR2 (blocked and pending; data = its fd).
 * On SIGUSR1: epoll_wait must report all three with their data, the eventfd must read 5, the
 * signalfd must deliver SIGUSR2 and the pipe its byte; each is then put back as it was (counter,
 * pending signal, byte), so the check can run again: "check ok ready=3" or "check bad what=...". */
#include "workload.h"
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, 0);
	int efd = eventfd(5, EFD_NONBLOCK);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK);
	int p[2];
	if (efd < 0 || sfd < 0 || pipe(p)) { wl_say("error setup"); return 1; }
	if (write(p[1], "z", 1) != 1) return 1;
	kill(getpid(), SIGUSR2);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev)) { wl_say("error epoll"); return 1; }
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = (uint64_t)p[0];
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)) return 1;
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)sfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev)) return 1;
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct epoll_event got[8];
		int n = epoll_wait(ep, got, 8, 100);
		int seen = 0;
		for (int i = 0; i < n; i++) {
			if (got[i].data.u64 == 0x1122334455667788ULL) seen |= 1;
			else if (got[i].data.u64 == (uint64_t)p[0]) seen |= 2;
			else if (got[i].data.u64 == (uint64_t)sfd) seen |= 4;
		}
		if (n != 3 || seen != 7) bad = "epoll";
		uint64_t cnt = 0;
		if (!bad && (read(efd, &cnt, 8) != 8 || cnt != 5)) bad = "eventfd";
		if (!bad && !(fcntl(efd, F_GETFL) & O_NONBLOCK)) bad = "eventfd-flags";
		struct signalfd_siginfo si;
		if (!bad && (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR2)) bad = "signalfd";
		char c = 0;
		if (!bad && (read(p[0], &c, 1) != 1 || c != 'z')) bad = "pipe";
		if (!bad && !(fcntl(ep, F_GETFD) & FD_CLOEXEC)) bad = "epoll-cloexec";
		/* put everything back for the next check */
		if (cnt) (void)!write(efd, &cnt, 8);
		if (c) (void)!write(p[1], &c, 1);
		kill(getpid(), SIGUSR2);
		if (bad) wl_say("check bad what=%s n=%d seen=%d", bad, n, seen);
		else wl_say("check ok ready=3");
	}
}
