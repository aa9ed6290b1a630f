/* locks DIR STATEFILE: holds an exclusive flock on DIR/a, a POSIX write lock on bytes 10..29 of
 * DIR/b and an OFD read lock on the whole of DIR/c (held by descriptors 3, 4 and 5 is not assumed:
 * the test reads /proc/PID/fdinfo). On SIGUSR1 it says "check ok" (it runs and answers). */
#include "workload.h"
#include <sys/file.h>

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	char a[4096], b[4096], c[4096];
	snprintf(a, sizeof a, "%s/a", argv[1]);
	snprintf(b, sizeof b, "%s/b", argv[1]);
	snprintf(c, sizeof c, "%s/c", argv[1]);
	wl_detach(argv[2]);
	int fa = open(a, O_CREAT | O_RDWR, 0600), fb = open(b, O_CREAT | O_RDWR, 0600), fc = open(c, O_CREAT | O_RDWR, 0600);
	if (fa < 0 || fb < 0 || fc < 0) { wl_say("error open"); return 1; }
	struct flock pl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20 };
	struct flock ol = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (flock(fa, LOCK_EX | LOCK_NB) || fcntl(fb, F_SETLK, &pl) || fcntl(fc, F_OFD_SETLK, &ol)) { wl_say("error lock"); return 1; }
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		wl_say("check ok");
	}
}
