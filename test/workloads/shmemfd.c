/* shmemfd [criu] STATEFILE: shared anonymous memory reached through descriptors (opened on a mapping's
 * /proc/self/map_files link, as CRIU's zdtm shmemfd and shmemfd-priv do), which a dump must keep
 * as the same shmem object (not a memfd, not an unlinked file).
 *  area  5 MAP_SHARED|MAP_ANONYMOUS pages, page i filled with 0x40+i. Descriptor A is opened
 *        on its map_files link (O_RDWR); through A the object is mapped MAP_PRIVATE from page 1
 *        (5 pages: the last lies past the object's end) with its page 1 written ('P': a private
 *        copy, the object keeps 0x42), and MAP_SHARED from page 2 (2 pages).
 *  fileB 1 MAP_SHARED|MAP_ANONYMOUS page whose descriptor B (map_files link) outlives the area:
 *        the area unmapped, the object truncated to 0, B set O_APPEND, "hello" written, the
 *        position set to 3, mode 0640.
 * With `criu`, the object may come back as a memfd named /dev/zero (`/memfd:/dev/zero (deleted)`),
 * as CRIU 4.2 restores shared anonymous memory; everything else is checked the same.
 * "ready pid=P" once set up. On SIGUSR1 it re-checks all of it: the link text and filesystem of
 * A and B, B's flags, position, size, mode and contents, the pages of the three mappings, and
 * that the object is still one (a token written through the shared area shows in the private
 * mapping's untouched page and in the second shared mapping, but not in its written page):
 * "check ok" / "check bad what=...". */
#include "workload.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#define PG 4096

/* the name CRIU 4.2's restore gives the object (a memfd) is taken too */
static int criu_names;

static int anon_name(const char *s) {
	return strcmp(s, "/dev/zero (deleted)") == 0 || (criu_names && strcmp(s, "/memfd:/dev/zero (deleted)") == 0);
}

static int all(const unsigned char *p, size_t n, unsigned char v) {
	for (size_t i = 0; i < n; i++)
		if (p[i] != v) return 0;
	return 1;
}

static int open_area(void *addr, size_t len) {
	char path[128];
	snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", (unsigned long)addr, (unsigned long)addr + len);
	return open(path, O_RDWR);
}

/* the link text and filesystem of fd: shared anonymous memory */
static int anon_shared(int fd) {
	char path[64], link[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0) return 0;
	link[n] = 0;
	struct statfs sf;
	return anon_name(link) && fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* the line of /proc/self/maps for the area at addr names shared anonymous memory, with perms */
static int mapped_as(void *addr, const char *perms) {
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f) return 0;
	char line[512];
	int ok = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long start;
		char p[8];
		if (sscanf(line, "%lx-%*x %7s", &start, p) != 2 || start != (unsigned long)addr) continue;
		char *name = strchr(line, '/');
		if (name) name[strcspn(name, "\n")] = 0;
		ok = strcmp(p, perms) == 0 && name && anon_name(name);
	}
	fclose(f);
	return ok;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	criu_names = argc > 2 && strcmp(argv[1], "criu") == 0;
	wl_detach(argv[argc - 1]);
	unsigned char *area = mmap(0, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) { wl_say("error mmap"); return 1; }
	for (int i = 0; i < 5; i++) memset(area + i * PG, 0x40 + i, PG);
	int a = open_area(area, 5 * PG);
	if (a < 0) { wl_say("error open A"); return 1; }
	unsigned char *priv = mmap(0, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, PG);
	unsigned char *shared2 = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, a, 2 * PG);
	if (priv == MAP_FAILED || shared2 == MAP_FAILED) { wl_say("error mmap A"); return 1; }
	memset(priv + PG, 'P', PG);

	void *one = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (one == MAP_FAILED) { wl_say("error mmap B"); return 1; }
	int b = open_area(one, PG);
	if (b < 0) { wl_say("error open B"); return 1; }
	munmap(one, PG);
	if (ftruncate(b, 0) || fcntl(b, F_SETFL, O_APPEND) || write(b, "hello", 5) != 5 || lseek(b, 3, SEEK_SET) != 3 || fchmod(b, 0640)) {
		wl_say("error set B");
		return 1;
	}

	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	unsigned char token = 0;
	for (;;) {
		wl_wait_check();
		const char *bad = 0;
		struct stat st;
		char buf[8] = {0};
		if (!anon_shared(a) || !anon_shared(b)) bad = "link";
		else if ((fcntl(b, F_GETFL) & ~0100000) != (O_RDWR | O_APPEND) || lseek(b, 0, SEEK_CUR) != 3) bad = "flags-pos";
		else if (fstat(b, &st) || st.st_size != 5 || (st.st_mode & 07777) != 0640) bad = "size-mode";
		else if (pread(b, buf, sizeof buf, 0) != 5 || memcmp(buf, "hello", 5)) bad = "contents";
		else if (!mapped_as(area, "rw-s") || !mapped_as(priv, "rw-p") || !mapped_as(shared2, "rw-s")) bad = "maps";
		else if (fstat(a, &st) || st.st_size != 5 * PG) bad = "size-A";
		/* the object's pages (page 3: the token's, checked below) */
		for (int i = 0; i < 5 && !bad; i++)
			if (i != 3 && !all(area + i * PG, PG, 0x40 + i)) bad = "area";
		if (!bad && (!all(priv, PG, 0x41) || !all(priv + PG, PG, 'P') || !all(shared2, PG, 0x42))) bad = "private";
		if (!bad) {
			/* a fresh token through the area: seen by the private mapping's untouched page 2 and
			 * the second shared mapping's page 1 (both the object's page 3), nowhere else */
			token = (unsigned char)(token % 200 + 1);
			memset(area + 3 * PG, token, PG);
			if (!all(priv + 2 * PG, PG, token) || !all(shared2 + PG, PG, token)) bad = "not-shared";
			else if (!all(priv + PG, PG, 'P') || !all(area + 2 * PG, PG, 0x42)) bad = "not-private";
			memset(area + 3 * PG, 0x43, PG);
		}
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
