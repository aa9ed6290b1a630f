/* ghost DIR STATEFILE: unlinked files still in use. DIR/open.txt is written ("ghost:1234"), kept
 * open at offset 6 and unlinked; DIR/map.bin (2 pages: 'M' then 'N') is mapped shared and then
 * unlinked. On SIGUSR1: the open file still has no name (nlink 0), its offset and contents are
 * as left, the mapping shows its bytes and a write through it reads back via the descriptor
 * kept on the same file: "check ok" or "check bad what=...". */
#include "workload.h"
#include <sys/mman.h>

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/open.txt", argv[1]);
	snprintf(b, sizeof b, "%s/map.bin", argv[1]);
	wl_detach(argv[2]);
	int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0640);
	int mf = open(b, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || mf < 0) { wl_say("error open"); return 1; }
	if (write(fd, "ghost:1234", 10) != 10 || lseek(fd, 6, SEEK_SET) != 6) return 1;
	char page[4096];
	memset(page, 'M', sizeof page);
	if (write(mf, page, 4096) != 4096) return 1;
	memset(page, 'N', sizeof page);
	if (write(mf, page, 4096) != 4096) return 1;
	char *m = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
	if (m == MAP_FAILED) return 1;
	unlink(a);
	unlink(b);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	int round = 0;
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct stat st;
		char buf[16] = {0};
		if (fstat(fd, &st) || st.st_nlink != 0 || st.st_size != 10 || (st.st_mode & 0777) != 0640) bad = "open-stat";
		else if (lseek(fd, 0, SEEK_CUR) != 6) bad = "open-offset";
		else if (pread(fd, buf, 10, 0) != 10 || memcmp(buf, "ghost:1234", 10)) bad = "open-data";
		else if (m[0] != 'M' || m[4095] != 'M' || m[4096] != 'N' || m[8191] != 'N') bad = "map-data";
		if (!bad) {
			char c = 0;
			m[100] = (char)('a' + round % 26);
			if (pread(mf, &c, 1, 100) != 1 || c != m[100]) bad = "map-shared";
			m[100] = 'M';
			round++;
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
