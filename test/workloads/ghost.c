/* ghost DIR [sparse] STATEFILE: unlinked files still in use. DIR/open.txt is written ("ghost:1234"), kept
 * open at offset 6 and unlinked; DIR/map.bin (2 pages: 'M' then 'N') is mapped shared and then
 * unlinked. On SIGUSR1: the open file still has no name (nlink 0), its offset and contents are
 * as left, the mapping shows its bytes and a write through it reads back via the descriptor
 * kept on the same file: "check ok" or "check bad what=...".
 *
 * sparse: also DIR/sparse.bin, 8 MiB with data at a few offsets and holes between, mode 0604,
 * kept open (at offset 12345) and mapped shared read-only, unlinked, its times set last to fixed
 * past values with futimens. Its check reads only through the mapping and through a descriptor
 * of its own opened with O_NOATIME (so that the check itself leaves atime alone): the bytes at
 * the data offsets, zeros in the holes, the SEEK_DATA/SEEK_HOLE map, size, mode, st_mtim and
 * st_atim to the microsecond, st_blocks no more than when it was made. */
#include "workload.h"
#include <sys/mman.h>

#define SP_SIZE (8L << 20)
/* the data written: [offset, length) */
static const long sp_data[][2] = {{0, 4096}, {(1L << 20) + 4096, 8192}, {(3L << 20) + 10, 100}, {5L << 20, 4096}, {SP_SIZE - 4096, 4096}};
#define SP_N (sizeof sp_data / sizeof sp_data[0])
static const struct timespec sp_times[2] = {{1111111111, 123456789}, {1222222222, 987654321}}; /* atime, mtime */

static unsigned char sp_byte(long off) { return (unsigned char)(off ^ (off >> 8) ^ (off >> 16) ^ 0x5a); }
static int sp_is_data(long off) {
	for (unsigned i = 0; i < SP_N; i++)
		if (off >= sp_data[i][0] && off < sp_data[i][0] + sp_data[i][1]) return 1;
	return 0;
}

/* the SEEK_DATA/SEEK_HOLE map of fd: up to 16 [data, hole) pairs; the count */
static int sp_map(int fd, long *map) {
	int n = 0;
	long off = 0;
	while (off < SP_SIZE && n < 16) {
		long d = lseek(fd, off, SEEK_DATA);
		if (d < 0) break;
		long h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) return -1;
		map[2 * n] = d;
		map[2 * n + 1] = h;
		n++;
		off = h;
	}
	return n;
}

static int sp_fd = -1;
static const unsigned char *sp_m;
static long sp_blocks;
static long sp_map0[32];
static int sp_n0;

static int sp_make(const char *dir) {
	char p[4096];
	snprintf(p, sizeof p, "%s/sparse.bin", dir);
	sp_fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (sp_fd < 0 || fchmod(sp_fd, 0604) || ftruncate(sp_fd, SP_SIZE)) return -1;
	for (unsigned i = 0; i < SP_N; i++) {
		unsigned char b[8192];
		for (long k = 0; k < sp_data[i][1]; k++) b[k] = sp_byte(sp_data[i][0] + k);
		if (pwrite(sp_fd, b, sp_data[i][1], sp_data[i][0]) != sp_data[i][1]) return -1;
	}
	if (fsync(sp_fd) || lseek(sp_fd, 12345, SEEK_SET) != 12345) return -1;
	sp_m = mmap(0, SP_SIZE, PROT_READ, MAP_SHARED, sp_fd, 0);
	if (sp_m == MAP_FAILED) return -1;
	unlink(p);
	/* times last: mapping the file touches its atime */
	if (futimens(sp_fd, sp_times)) return -1;
	struct stat st;
	if (fstat(sp_fd, &st)) return -1;
	sp_blocks = st.st_blocks;
	snprintf(p, sizeof p, "/proc/self/fd/%d", sp_fd);
	int q = open(p, O_RDONLY | O_NOATIME);
	if (q < 0) return -1;
	sp_n0 = sp_map(q, sp_map0);
	close(q);
	return sp_n0 < 0 ? -1 : 0;
}

static const char *sp_check(void) {
	struct stat st;
	if (fstat(sp_fd, &st)) return "sparse-fstat";
	if (st.st_nlink != 0 || st.st_size != SP_SIZE || (st.st_mode & 07777) != 0604 || !S_ISREG(st.st_mode)) return "sparse-stat";
	if (st.st_mtim.tv_sec != sp_times[1].tv_sec || st.st_mtim.tv_nsec / 1000 != sp_times[1].tv_nsec / 1000) return "sparse-mtime";
	if (st.st_blocks > sp_blocks) return "sparse-blocks";
	if (lseek(sp_fd, 0, SEEK_CUR) != 12345) return "sparse-offset";
	/* the mapping: every byte (page faults leave atime alone) */
	for (long off = 0; off < SP_SIZE; off++)
		if (sp_m[off] != (sp_is_data(off) ? sp_byte(off) : 0)) return "sparse-map-data";
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", sp_fd);
	int q = open(p, O_RDONLY | O_NOATIME);
	if (q < 0) return "sparse-reopen";
	const char *bad = 0;
	long map[32];
	int n = sp_map(q, map);
	if (n != sp_n0 || memcmp(map, sp_map0, sizeof(long) * 2 * (n > 0 ? n : 0))) bad = "sparse-holes";
	for (unsigned i = 0; !bad && i < SP_N; i++) {
		unsigned char b[8192];
		if (pread(q, b, sp_data[i][1], sp_data[i][0]) != sp_data[i][1]) bad = "sparse-read";
		for (long k = 0; !bad && k < sp_data[i][1]; k++)
			if (b[k] != sp_byte(sp_data[i][0] + k)) bad = "sparse-file-data";
	}
	close(q);
	/* atime last (so that "sparse-atime" says everything else was right); this check read
	 * nothing that could have moved it */
	if (!bad && (fstat(sp_fd, &st) || st.st_atim.tv_sec != sp_times[0].tv_sec || st.st_atim.tv_nsec / 1000 != sp_times[0].tv_nsec / 1000)) bad = "sparse-atime";
	return bad;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	int sparse = argc > 3 && !strcmp(argv[2], "sparse");
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/open.txt", argv[1]);
	snprintf(b, sizeof b, "%s/map.bin", argv[1]);
	wl_detach(argv[argc - 1]);
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
	if (sparse && sp_make(argv[1])) { wl_say("error sparse"); return 1; }
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
		else if (sparse) bad = sp_check();
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
