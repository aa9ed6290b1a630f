/* For the programs run as a container's init (built static into its rootfs: rootghost, rootwatch),
 * which report what they found changed in /tmp/fail, as the container sees it. */
#ifndef CRTOOLS_CONTAINER_H
#define CRTOOLS_CONTAINER_H
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* what changed (and errno) to /tmp/fail; then wait, so that it can be read through the root */
static void fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int fd;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open("/tmp/fail", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		dprintf(fd, "%s (errno %d)\n", buf, errno);
		close(fd);
	}
	for (;;)
		pause();
}
#endif
