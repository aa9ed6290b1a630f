/* Files and mounts under DIR, the directory a mount namespace workload (mntns, mntover) works
 * in (each sets it from its state file's). */
#ifndef CRTOOLS_MNTDIR_H
#define CRTOOLS_MNTDIR_H
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[3072];

static void path_of(char *out, const char *rel) {
	snprintf(out, 4096, "%s/%s", dir, rel);
}

static int put(const char *rel, const char *text, int perm) {
	char p[4096];
	path_of(p, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, perm);
	if (fd < 0) return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int holds(const char *rel, const char *text) {
	char p[4096], buf[256];
	path_of(p, rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) return 0;
	buf[n] = 0;
	return strcmp(buf, text) == 0;
}

/* How many mounts have mount point DIR/REL. */
static int mounts_at(const char *rel) {
	char p[4096], line[8192], mp[4096];
	int n = 0;
	path_of(p, rel);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%*d %*d %*u:%*u %*s %4095s", mp) == 1 && !strcmp(mp, p)) n++;
	fclose(f);
	return n;
}
#endif
