/* capstate STATEFILE: a root task that drops CAP_NET_RAW from its bounding set, CAP_SYS_BOOT
 * from its permitted and effective sets, CAP_CHOWN from its effective set only, adds
 * CAP_NET_BIND_SERVICE to inheritable and ambient, and sets no_new_privs. State is checked from
 * outside (/proc/PID/status). CAP_SYS_PTRACE stays: the dump's parasite needs it. "ready pid=N". */
#include "workload.h"
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d)) return 3;
	if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0)) return 3;
	d[0].permitted &= ~(1u << CAP_SYS_BOOT);
	d[0].effective &= ~((1u << CAP_SYS_BOOT) | (1u << CAP_CHOWN));
	d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
	if (syscall(SYS_capset, &h, d)) return 3;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)) return 3;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 3;
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) pause();
}
