/* A tree in UTS and IPC namespaces of its own: the root unshares them, names its UTS namespace,
 * sets an IPC sysctl, and forks a child that lives in them too. Optionally (argument "sysv")
 * it creates a SysV message queue there, which a dump refuses by name.
 *
 *   nsuts HOSTNAME DOMAINNAME [sysv] STATEFILE
 *
 * SIGUSR1: "check ok child=1" when the names and the sysctl are still those it set and its child
 * is alive in the same namespaces. */
#include "workload.h"
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *host = argv[1], *dom = argv[2];
	int sysv = argc > 4 && strcmp(argv[3], "sysv") == 0;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWUTS | CLONE_NEWIPC)) {
		wl_say("error unshare");
		return 1;
	}
	if (sethostname(host, strlen(host)) || setdomainname(dom, strlen(dom))) {
		wl_say("error sethostname");
		return 1;
	}
	int fd = open("/proc/sys/kernel/msgmni", O_WRONLY);
	if (fd < 0 || write(fd, "77", 2) != 2) {
		wl_say("error msgmni");
		return 1;
	}
	close(fd);
	if (sysv && msgget(0x5eed, IPC_CREAT | 0600) < 0) {
		wl_say("error msgget");
		return 1;
	}
	wl_handle_usr1();
	pid_t child = fork();
	if (child == 0) {
		for (;;) pause();
	}
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		char h[128] = "", d[128] = "", m[32] = "";
		int ok = wl_read_file("/proc/sys/kernel/hostname", h, sizeof h) == 0 && strcmp(h, host) == 0 &&
			 wl_read_file("/proc/sys/kernel/domainname", d, sizeof d) == 0 && strcmp(d, dom) == 0 &&
			 wl_read_file("/proc/sys/kernel/msgmni", m, sizeof m) == 0 && strcmp(m, "77") == 0;
		int kid = kill(child, 0) == 0 && wl_same_ns(getpid(), child, "uts") && wl_same_ns(getpid(), child, "ipc");
		if (ok && kid)
			wl_say("check ok child=1");
		else
			wl_say("check bad host=%s dom=%s msgmni=%s child=%d", h, d, m, kid);
	}
}
