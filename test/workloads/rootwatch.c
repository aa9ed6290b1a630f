/*
 * A container's process with file watches and another task's /proc file (crtools issue 17:
 * restored under --root). Built static and run as a container's init with CAP_SYS_ADMIN (its
 * paths are the container's): it makes
 *  - an inotify watch (IN_MODIFY) on /tmp/watched, a file of the container's root file system;
 *  - a fanotify group with a mark of the mount of /dev (FAN_OPEN: the container's own tmpfs,
 *    which the restore mounts again) and an inode mark (FAN_MODIFY) on /tmp/watched;
 *  - a child A that waits, and a child B that holds /proc/A/status at its lowest free descriptor
 *    number (a file opened once every task exists, by a task other than the root) and waits.
 * Then, every 0.1 s, it writes to /tmp/watched and opens /dev/probe (a file of that tmpfs:
 * /dev/null is a mount of its own) and checks that the inotify
 * watch saw the write (by its watch descriptor) and the fanotify group the write and the open,
 * and appends the next count to /tmp/count; B checks as often that its descriptor still names
 * A's status. On the first thing found changed either writes what to /tmp/fail and stops (the
 * init: counting; it waits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>
#include "container.h"

/* the inotify events waiting: did one of watch wd with IN_MODIFY come? */
static int inotify_saw(int ifd, int wd)
{
	char buf[4096] __attribute__((aligned(8)));
	int saw = 0;
	ssize_t n;
	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->wd == wd && (e->mask & IN_MODIFY))
				saw = 1;
			p += sizeof(*e) + e->len;
		}
	}
	return saw;
}

/* the fanotify events waiting: the masks seen (each event's descriptor closed) */
static unsigned long long fanotify_saw(int fan)
{
	char buf[4096] __attribute__((aligned(8)));
	unsigned long long seen = 0;
	ssize_t n;
	while ((n = read(fan, buf, sizeof(buf))) > 0) {
		struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			seen |= m->mask;
			if (m->fd >= 0)
				close(m->fd);
		}
	}
	return seen;
}

int main(void)
{
	int ifd, wd, fan, count = 0, p[2], bfd = -1;
	pid_t a, b;
	char proc[64], link[64];

	int w = open("/tmp/watched", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w < 0)
		fail("open /tmp/watched");
	close(w);
	w = open("/dev/probe", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w < 0)
		fail("open /dev/probe");
	close(w);
	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0 || (wd = inotify_add_watch(ifd, "/tmp/watched", IN_MODIFY)) < 0)
		fail("inotify watch on /tmp/watched");
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fan < 0)
		fail("fanotify_init");
	if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, "/dev"))
		fail("fanotify mount mark on /dev");
	if (fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, "/tmp/watched"))
		fail("fanotify inode mark on /tmp/watched");

	a = fork();
	if (a < 0)
		fail("fork");
	if (a == 0)
		for (;;)
			pause();
	if (pipe(p))
		fail("pipe");
	b = fork();
	if (b < 0)
		fail("fork");
	if (b == 0) {
		char path[64];
		int fd;
		close(p[0]);
		snprintf(path, sizeof(path), "/proc/%d/status", (int)a);
		/* at its lowest free number */
		fd = open(path, O_RDONLY);
		if (fd < 0 || write(p[1], &fd, sizeof(fd)) != sizeof(fd))
			_exit(1);
		close(p[1]);
		/* B checks its own descriptor (another task reading B's /proc/PID/fd needs ptrace
		   access to B) */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		for (;;) {
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			ssize_t n = readlink(proc, link, sizeof(link) - 1);
			if (n < 0)
				fail("child B's fd %d: gone", fd);
			link[n] = 0;
			if (strcmp(link, path))
				fail("child B's fd %d names %s, not %s", fd, link, path);
			nanosleep(&ts, NULL);
		}
	}
	close(p[1]);
	if (read(p[0], &bfd, sizeof(bfd)) != sizeof(bfd))
		fail("child B's descriptor");
	close(p[0]);

	for (;;) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		unsigned long long seen;
		int fd;
		w = open("/tmp/watched", O_WRONLY | O_APPEND);
		if (w < 0 || write(w, "x", 1) != 1)
			fail("write /tmp/watched");
		close(w);
		fd = open("/dev/probe", O_RDONLY);
		if (fd < 0)
			fail("open /dev/probe");
		close(fd);
		if (!inotify_saw(ifd, wd))
			fail("inotify: no IN_MODIFY of watch %d", wd);
		seen = fanotify_saw(fan);
		if (!(seen & FAN_MODIFY))
			fail("fanotify: no FAN_MODIFY of /tmp/watched (mask 0x%llx)", seen);
		if (!(seen & FAN_OPEN))
			fail("fanotify: no FAN_OPEN on the mount of /dev (mask 0x%llx)", seen);
		fd = open("/tmp/count", O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dprintf(fd, "%d\n", ++count);
			close(fd);
		}
		nanosleep(&ts, NULL);
	}
}
