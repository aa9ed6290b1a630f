/* pipetree STATEFILE: a parent and two children. The parent keeps 1000 bytes in flight
 * in a pipe nobody reads until SIGUSR1, and the children pass a token through a pipe ring.
 * On SIGUSR1 the parent peeks the in-flight bytes (reads and checks them, writes them back),
 * checks both children are alive and the token still moves: "check ok ...". */
#include "workload.h"

static int inflight[2];

static void child_loop(int rd, int wr) {
	char c;
	for (;;) {
		if (read(rd, &c, 1) != 1) _exit(1);
		usleep(10000);
		if (write(wr, &c, 1) != 1) _exit(1);
	}
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	int a[2], b[2], rounds[2];
	if (pipe(inflight) || pipe(a) || pipe(b) || pipe(rounds)) return 1;
	char buf[1000];
	for (int i = 0; i < 1000; i++) buf[i] = (char)('a' + i % 26);
	if (write(inflight[1], buf, sizeof buf) != sizeof buf) return 1;
	pid_t c1 = fork();
	if (c1 == 0) child_loop(a[0], b[1]);
	pid_t c2 = fork();
	if (c2 == 0) {
		/* relay b -> a, and tick the rounds pipe each time */
		char c;
		for (;;) {
			if (read(b[0], &c, 1) != 1) _exit(1);
			(void)!write(rounds[1], &c, 1);
			if (write(a[1], &c, 1) != 1) _exit(1);
		}
	}
	fcntl(rounds[0], F_SETFL, O_NONBLOCK);
	(void)!write(a[1], "t", 1);
	wl_handle_usr1();
	wl_say("ready pid=%d children=%d,%d", (int)getpid(), (int)c1, (int)c2);
	for (;;) {
		usleep(20000);
		char drain[256];
		while (read(rounds[0], drain, sizeof drain) > 0) {}
		if (!wl_want_check) continue;
		wl_want_check = 0;
		char got[1000];
		ssize_t n = read(inflight[0], got, sizeof got);
		int same = n == 1000 && memcmp(got, buf, 1000) == 0;
		if (n > 0) (void)!write(inflight[1], got, n);
		int alive = kill(c1, 0) == 0 && kill(c2, 0) == 0;
		usleep(200000);
		int moved = 0;
		while ((n = read(rounds[0], drain, sizeof drain)) > 0) moved += n;
		wl_say("check %s inflight=%d alive=%d rounds=%d", same && alive && moved > 0 ? "ok" : "bad", same, alive, moved);
	}
}
