/* timerfds STATEFILE: three timerfds.
 *  a: CLOCK_MONOTONIC, one-shot, 1000 s ahead (the check wants 900-1000 s left);
 *  b: CLOCK_REALTIME, every 200 ms, non-blocking (the check wants >= 1 expiry and the interval);
 *  c: CLOCK_BOOTTIME, one-shot 10 ms, expired and never read (the check wants exactly 1 expiry,
 *     then sets that tick back with TFD_IOC_SET_TICKS so the check can run again).
 * On SIGUSR1: "check ok left=S" or "check bad what=...". */
#include "workload.h"
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	int a = timerfd_create(CLOCK_MONOTONIC, 0);
	int b = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	int c = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	if (a < 0 || b < 0 || c < 0) { wl_say("error timerfd"); return 1; }
	struct itimerspec ta = {.it_value = {1000, 0}};
	struct itimerspec tb = {.it_interval = {0, 200000000}, .it_value = {0, 200000000}};
	struct itimerspec tc = {.it_value = {0, 10000000}};
	if (timerfd_settime(a, 0, &ta, 0) || timerfd_settime(b, 0, &tb, 0) || timerfd_settime(c, 0, &tc, 0)) return 1;
	usleep(50000);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct itimerspec now;
		uint64_t n = 0;
		if (timerfd_gettime(a, &now) || now.it_value.tv_sec < 900 || now.it_value.tv_sec > 1000 || now.it_interval.tv_sec || now.it_interval.tv_nsec) bad = "one-shot";
		long left = now.it_value.tv_sec;
		usleep(250000);
		if (!bad && (read(b, &n, 8) != 8 || n < 1)) bad = "periodic-ticks";
		if (!bad && (timerfd_gettime(b, &now) || now.it_interval.tv_sec != 0 || now.it_interval.tv_nsec != 200000000)) bad = "periodic-interval";
		n = 0;
		if (!bad && (read(c, &n, 8) != 8 || n != 1)) bad = "expired-unread";
		n = 1;
		if (ioctl(c, TFD_IOC_SET_TICKS, &n)) bad = bad ? bad : "set-ticks";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok left=%ld", left);
	}
}
