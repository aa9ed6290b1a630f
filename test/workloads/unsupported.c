/* unsupported STATEFILE: a tree holding several things crtools cannot dump yet, each of a
 * different sort, for `criu dump --check-only` (which must name them all at once):
 *   - a task attribute: a timer slack of 123457 ns (no field in CRIU's images);
 *   - a descriptor: a pidfd of init (pid 1), outside any tree a test dumps, fd 7;
 *   - a mapping: a SysV shared memory segment (shmat; removed at once, it lives while attached);
 *   - a process sharing its cwd, root and umask with the root (clone with CLONE_FS), made
 *     before the rest (it has none of the pidfd, the slack or the segment).
 * "ready pid=N child=C"; on SIGUSR1 "check ok" if all of it is still as set up, else
 * "check bad what=...". The child dies with the root (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include "workload.h"
#include <sched.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>

static char child_stack[64 * 1024] __attribute__((aligned(16)));

static int child_main(void *arg) {
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) pause();
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[argc - 1]);
	wl_handle_usr1();

	/* the child first: it shares the fs, none of the rest */
	pid_t child = clone(child_main, child_stack + sizeof child_stack, CLONE_FS | SIGCHLD, NULL);
	if (child < 0) return 7;
	if (prctl(PR_SET_TIMERSLACK, 123457UL, 0, 0, 0)) return 3;
	int pfd = (int)syscall(SYS_pidfd_open, 1, 0);
	if (pfd < 0 || dup2(pfd, 7) != 7) return 4;
	if (pfd != 7) close(pfd);
	int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (shmid < 0) return 5;
	volatile char *shm = shmat(shmid, NULL, 0);
	shmctl(shmid, IPC_RMID, NULL);
	if (shm == (void *)-1) return 6;
	shm[0] = 'x';

	wl_say("ready pid=%d child=%d", (int)getpid(), (int)child);
	for (;;) {
		wl_wait_check();
		char bad[256] = "";
		if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != 123457) strcat(bad, "slack,");
		if (fcntl(7, F_GETFD) < 0) strcat(bad, "pidfd,");
		if (shm[0] != 'x') strcat(bad, "shm,");
		if (kill(child, 0) != 0) strcat(bad, "child,");
		if (bad[0]) {
			bad[strlen(bad) - 1] = 0;
			wl_say("check bad what=%s", bad);
		} else {
			wl_say("check ok");
		}
	}
}
