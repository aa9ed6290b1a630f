/* filemap DATAFILE STATEFILE: maps DATAFILE privately (read-only and written copy) and
 * shared read-only, keeps it open at offset 1234 with O_APPEND off.
 * On SIGUSR1: "check ok" when the offset and every mapping still show the expected bytes. */
#include <sys/mman.h>
#include "workload.h"

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	wl_detach(argv[2]);
	int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0) { wl_say("error open"); return 1; }
	char page[4096];
	for (int i = 0; i < 4096; i++) page[i] = (char)(i * 7);
	for (int i = 0; i < 4; i++) (void)!write(fd, page, sizeof page);
	char *ro = mmap(0, 16384, PROT_READ, MAP_PRIVATE, fd, 0);
	char *cow = mmap(0, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char *sh = mmap(0, 16384, PROT_READ, MAP_SHARED, fd, 0);
	if (ro == MAP_FAILED || cow == MAP_FAILED || sh == MAP_FAILED) { wl_say("error mmap"); return 1; }
	memset(cow + 4096, 'Z', 4096);
	lseek(fd, 1234, SEEK_SET);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int ok = lseek(fd, 0, SEEK_CUR) == 1234;
		for (int i = 0; i < 16384; i++) {
			char want = (char)((i % 4096) * 7);
			ok &= ro[i] == want && sh[i] == want;
			ok &= cow[i] == ((i >= 4096 && i < 8192) ? 'Z' : want);
		}
		wl_say("check %s", ok ? "ok" : "bad");
	}
}
