/*
 * A container's process holding unlinked files and unix sockets bound to paths (crtools issue
 * 17: restored under --root). Built static and run as a container's init (its paths are the
 * container's): it makes
 *  - /tmp/ghost (on the container's root file system) and /dev/shm/ghost (on a tmpfs of the
 *    container's own), each with a pattern and a hole, held open and unlinked;
 *  - a stream listener bound to /tmp/sock, one connection accepted from it (both ends held);
 *  - a datagram socket bound to /tmp/dg whose file is then unlinked, and a socket connected to it.
 * Then, every 0.1 s, it checks all of that (contents, link counts, names as /proc shows them,
 * the sockets' names, a new connection to /tmp/sock by its name, bytes through the accepted
 * connection, a datagram through the unlinked name's socket) and appends the next count to
 * /tmp/count; on the first thing found changed it writes what to /tmp/fail and stops counting
 * (it waits, so that the file can be read through its root).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "container.h"

#define PIECE 4096

static char pattern(const char *name, off_t off)
{
	return (char)(name[off % strlen(name)] + off / 7);
}

/* a file with a piece of pattern, a hole of one piece, a piece more: held open, unlinked */
static int ghost(const char *path)
{
	char buf[PIECE];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	off_t o;
	if (fd < 0)
		fail("open %s", path);
	for (o = 0; o < PIECE; o++)
		buf[o] = pattern(path, o);
	if (pwrite(fd, buf, PIECE, 0) != PIECE)
		fail("write %s", path);
	for (o = 0; o < PIECE; o++)
		buf[o] = pattern(path, 2 * PIECE + o);
	if (pwrite(fd, buf, PIECE, 2 * PIECE) != PIECE)
		fail("write %s", path);
	if (unlink(path))
		fail("unlink %s", path);
	return fd;
}

static void check_ghost(int fd, const char *path)
{
	char buf[3 * PIECE], proc[64], link[128], want[128];
	struct stat st;
	ssize_t n;
	off_t o;
	if (fstat(fd, &st) || st.st_nlink != 0 || st.st_size != 3 * PIECE || (st.st_mode & 07777) != 0640)
		fail("%s: nlink %lu size %ld mode %o", path, (unsigned long)st.st_nlink, (long)st.st_size, st.st_mode & 07777);
	if (pread(fd, buf, sizeof(buf), 0) != sizeof(buf))
		fail("%s: read", path);
	for (o = 0; o < 3 * PIECE; o++)
		if (buf[o] != (o >= PIECE && o < 2 * PIECE ? 0 : pattern(path, o)))
			fail("%s: byte %ld", path, (long)o);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		fail("%s: readlink", path);
	link[n] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", path);
	if (strcmp(link, want))
		fail("%s: its descriptor names %s", path, link);
}

static struct sockaddr_un addr(const char *path, socklen_t *len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, path);
	*len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
	return a;
}

static void check_name(int sk, const char *path)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	if (getsockname(sk, (struct sockaddr *)&a, &len) || strcmp(a.sun_path, path))
		fail("socket bound to %s: named %s", path, a.sun_path);
}

int main(void)
{
	struct sockaddr_un a;
	socklen_t len;
	int g1, g2, lsk, csk, ask, dsk, dcl, count = 0;
	struct stat st;

	g1 = ghost("/tmp/ghost");
	g2 = ghost("/dev/shm/ghost");
	unlink("/tmp/sock");
	unlink("/tmp/dg");
	a = addr("/tmp/sock", &len);
	lsk = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&a, len) || listen(lsk, 8))
		fail("listen on /tmp/sock");
	csk = socket(AF_UNIX, SOCK_STREAM, 0);
	if (csk < 0 || connect(csk, (struct sockaddr *)&a, len))
		fail("connect to /tmp/sock");
	ask = accept(lsk, NULL, NULL);
	if (ask < 0)
		fail("accept");
	a = addr("/tmp/dg", &len);
	dsk = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (dsk < 0 || bind(dsk, (struct sockaddr *)&a, len))
		fail("bind /tmp/dg");
	dcl = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (dcl < 0 || connect(dcl, (struct sockaddr *)&a, len))
		fail("connect to /tmp/dg");
	if (unlink("/tmp/dg"))
		fail("unlink /tmp/dg");

	for (;;) {
		char c = (char)count, got = 0;
		int fd, n;
		check_ghost(g1, "/tmp/ghost");
		check_ghost(g2, "/dev/shm/ghost");
		check_name(lsk, "/tmp/sock");
		check_name(ask, "/tmp/sock");
		check_name(dsk, "/tmp/dg");
		if (stat("/tmp/sock", &st) || !S_ISSOCK(st.st_mode))
			fail("/tmp/sock: no socket file");
		if (stat("/tmp/dg", &st) == 0 || stat("/tmp/ghost", &st) == 0 || stat("/dev/shm/ghost", &st) == 0)
			fail("an unlinked name is there again");
		/* a new connection by the listener's name */
		a = addr("/tmp/sock", &len);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, len))
			fail("a new connection to /tmp/sock");
		n = accept(lsk, NULL, NULL);
		if (n < 0)
			fail("accepting the new connection");
		close(n);
		close(fd);
		/* bytes through the first connection, a datagram through the unlinked name's socket */
		if (write(csk, &c, 1) != 1 || read(ask, &got, 1) != 1 || got != c)
			fail("the accepted connection");
		got = 0;
		if (send(dcl, &c, 1, 0) != 1 || recv(dsk, &got, 1, 0) != 1 || got != c)
			fail("the datagram socket");
		fd = open("/tmp/count", O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dprintf(fd, "%d\n", ++count) < 0)
			fail("/tmp/count");
		close(fd);
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	}
}
