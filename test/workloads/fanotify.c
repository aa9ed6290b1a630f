/* fanotify groups and their marks, for issue 15.
 *
 *   fanotify marks DIR STATE
 *     A notification group (FAN_CLASS_NOTIF, non-blocking, events opened O_RDONLY) with an inode
 *     mark on DIR/watched (FAN_MODIFY | FAN_CLOSE_WRITE) and one on DIR itself (FAN_ONDIR |
 *     FAN_EVENT_ON_CHILD | FAN_OPEN, ignoring FAN_CLOSE_NOWRITE, surviving modification), and a
 *     second group (FAN_CLASS_NOTIF | FAN_REPORT_FID) with a mount mark (FAN_CLOSE_WRITE) on
 *     DIR/mnt, a tmpfs it mounts there (nothing else writes on it; the test unmounts it).
 *     "ready" once set up.
 *     On SIGUSR1: no event is waiting; DIR/watched is written: the first group reports
 *     FAN_MODIFY and FAN_CLOSE_WRITE for it (its fd names DIR/watched); DIR/mnt/f is written:
 *     the second group reports FAN_CLOSE_WRITE; DIR/other is opened and closed without writing: the first group
 *     reports FAN_OPEN for it (a child of DIR) and not FAN_CLOSE_NOWRITE (ignored); then
 *     nothing more waits in either group.
 *   fanotify pending DIR STATE
 *     One group with an event waiting unread (refused by name by the dump: it would be lost).
 *
 * The verdict: "check ok" or "check bad <what>". */
#include "workload.h"

#include <errno.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

static int bad;
static char why[300];

static void fail(const char *what, long v) {
	if (bad++) return;
	snprintf(why, sizeof why, "%s %ld", what, v);
}

static char dir[512], watched[600], other[600], mnt[600], inmnt[700];

static void touch(const char *path, int write_it) {
	int fd = open(path, write_it ? O_WRONLY | O_CREAT : O_RDONLY, 0644);
	if (fd < 0) { fail("open", -errno); return; }
	if (write_it && write(fd, "x", 1) != 1) fail("write", -errno);
	close(fd);
}

static int waiting(int g) {
	int n = -1;
	if (ioctl(g, FIONREAD, &n) < 0) return -errno;
	return n;
}

/* read every event of a notification group; OR of the masks seen for `path` (by its fd) */
static unsigned long long events_for(int g, const char *path, int *others) {
	char buf[8192], link[64], name[700];
	unsigned long long seen = 0;
	usleep(50000);
	for (;;) {
		long n = read(g, buf, sizeof buf);
		if (n <= 0) break;
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			if (m->fd >= 0) {
				snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
				long l = readlink(link, name, sizeof name - 1);
				name[l > 0 ? l : 0] = 0;
				close(m->fd);
				if (!strcmp(name, path)) seen |= m->mask;
				else (*others)++;
			} else {
				seen |= m->mask; /* FAN_REPORT_FID: no fd, the file by its handle */
			}
		}
	}
	return seen;
}

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	snprintf(dir, sizeof dir, "%s", argv[2]);
	snprintf(watched, sizeof watched, "%s/watched", dir);
	snprintf(other, sizeof other, "%s/other", dir);
	snprintf(mnt, sizeof mnt, "%s/mnt", dir);
	snprintf(inmnt, sizeof inmnt, "%s/f", mnt);
	mkdir(dir, 0755);
	touch(watched, 1);
	touch(other, 1);
	wl_detach(argv[3]);
	wl_handle_usr1();
	int a = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (a < 0) { wl_say("error fanotify_init %d", errno); return 1; }
	if (fanotify_mark(a, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, watched) < 0) return 1;
	if (!strcmp(argv[1], "pending")) {
		touch(watched, 1);
		wl_say("ready pid=%d", (int)getpid());
		for (;;) pause();
	}
	if (fanotify_mark(a, FAN_MARK_ADD, FAN_ONDIR | FAN_EVENT_ON_CHILD | FAN_OPEN, AT_FDCWD, dir) < 0) return 1;
	if (fanotify_mark(a, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_NOWRITE, AT_FDCWD, dir) < 0) return 1;
	int b = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_REPORT_FID, O_RDONLY);
	if (b < 0) return 1;
	mkdir(mnt, 0755);
	if (mount("crtools-fanotify", mnt, "tmpfs", 0, "size=1m") < 0) { wl_say("error mount %d", errno); return 1; }
	if (fanotify_mark(b, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, mnt) < 0) { wl_say("error mount mark %d", errno); return 1; }
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		bad = 0;
		int others = 0;
		if (waiting(a) != 0) fail("group a: bytes waiting", waiting(a));
		if (waiting(b) != 0) fail("group b: bytes waiting", waiting(b));
		touch(watched, 1);
		unsigned long long ma = events_for(a, watched, &others);
		if ((ma & (FAN_MODIFY | FAN_CLOSE_WRITE)) != (FAN_MODIFY | FAN_CLOSE_WRITE)) fail("group a: watched events", (long)ma);
		touch(inmnt, 1);
		unsigned long long mb = events_for(b, "", &others);
		if (!(mb & FAN_CLOSE_WRITE)) fail("group b: mount events", (long)mb);
		others = 0;
		touch(other, 0);
		unsigned long long mo = events_for(a, other, &others);
		if (!(mo & FAN_OPEN)) fail("group a: other not opened", (long)mo);
		if (mo & FAN_CLOSE_NOWRITE) fail("group a: ignored close reported", (long)mo);
		events_for(b, "", &others);
		if (waiting(a) != 0 || waiting(b) != 0) fail("events left", waiting(a));
		if (bad) wl_say("check bad %s", why);
		else wl_say("check ok");
	}
}
