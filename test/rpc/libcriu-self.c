/*
 * A libcriu client that dumps itself: criu_dump() with no pid set, the main use of libcriu.
 *
 *   libcriu-self CRIU IMGDIR OUT [leave-running]
 *
 * CRIU: sk:PATH (a `criu service` socket) or a criu binary (libcriu starts `criu swrk`).
 * Before the dump: a file of its own opened (OUT.data, written, offset moved), 4 MiB of memory
 * filled with a pattern, "dumping PID" appended to OUT. After criu_dump() returns, one line
 * appended to OUT: "answer RET pid PID same_pid B memory_ok B file_ok B" (RET: criu_dump's
 * value, 0 dumped and left running, 1 restored, negative an error); exit 0 when RET >= 0.
 * Built with Debian's libcriu (-lcriu), against its criu.h.
 */
#include <criu.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AREA (4 << 20)

static uint64_t word(size_t i)
{
	return (uint64_t)i * 2654435761u ^ 0x5eed;
}

static void say(const char *out, const char *line)
{
	FILE *f = fopen(out, "a");
	if (!f)
		exit(2);
	fputs(line, f);
	fclose(f);
}

int main(int argc, char **argv)
{
	char data[4096], line[512], buf[2000], expect[1000];
	int leave = argc > 4 && !strcmp(argv[4], "leave-running");
	int fd, dir, ret, mem_ok = 1;
	pid_t pid = getpid();
	uint64_t *area;
	size_t i;
	off_t pos;

	if (argc < 4) {
		fprintf(stderr, "usage: libcriu-self CRIU IMGDIR OUT [leave-running]\n");
		return 2;
	}
	for (i = 0; i < sizeof(expect); i++)
		expect[i] = '0' + i % 10;
	snprintf(data, sizeof(data), "%s.data", argv[3]);
	fd = open(data, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, expect, sizeof(expect)) != sizeof(expect) || lseek(fd, 321, SEEK_SET) != 321)
		return 2;
	area = malloc(AREA);
	if (!area)
		return 2;
	for (i = 0; i < AREA / 8; i++)
		area[i] = word(i);

	dir = open(argv[2], O_DIRECTORY);
	if (dir < 0 || criu_init_opts() < 0)
		return 2;
	if (!strncmp(argv[1], "sk:", 3))
		criu_set_service_address(argv[1] + 3);
	else
		criu_set_service_binary(argv[1]);
	criu_set_images_dir_fd(dir);
	criu_set_log_file("dump.log");
	criu_set_log_level(4);
	criu_set_leave_running(leave);

	snprintf(line, sizeof(line), "dumping %d\n", pid);
	say(argv[3], line);
	ret = criu_dump();

	for (i = 0; i < AREA / 8; i++)
		if (area[i] != word(i))
			mem_ok = 0;
	pos = lseek(fd, 0, SEEK_CUR);
	snprintf(line, sizeof(line), "answer %d pid %d same_pid %d memory_ok %d file_ok %d\n", ret, getpid(), getpid() == pid, mem_ok,
		 pos == 321 && pread(fd, buf, sizeof(buf), 0) == sizeof(expect) && !memcmp(buf, expect, sizeof(expect)));
	say(argv[3], line);
	return ret < 0 ? 1 : 0;
}
