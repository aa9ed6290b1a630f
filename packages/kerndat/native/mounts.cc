// @crtools/kerndat: probe children that mount in a private mount namespace: overlayfs (does
// /proc/PID/maps show the dev:ino stat() gives?) and autofs (pipe_ino= in mountinfo).
#include "kerndat.h"

#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace crtools::kerndat {

namespace {

// ---- overlayfs: does /proc/PID/maps show the dev:ino that stat() gives for a
// file mapped from overlayfs? Done in a private mount namespace inside the child.

size_t str_cat(char *dst, size_t cap, const char *a, const char *b) {
  size_t n = 0;
  for (; *a && n + 1 < cap; a++) dst[n++] = *a;
  for (; *b && n + 1 < cap; b++) dst[n++] = *b;
  dst[n] = 0;
  return n;
}

unsigned long parse_hex(const char *p, const char **end) {
  unsigned long v = 0;
  for (;; p++) {
    int d = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + d;
  }
  *end = p;
  return v;
}

static char maps_buf[4 << 20];

// Read fd to its end into maps_buf, NUL-terminated (raw syscalls: safe in a forked child).
static void slurp_into_maps_buf(long fd) {
  long len = 0;
  for (;;) {
    long r = rawsys(SYS_read, fd, (long)(maps_buf + len), (long)(sizeof(maps_buf) - 1 - len));
    if (r <= 0) break;
    len += r;
  }
  maps_buf[len] = 0;
}

}  // namespace

[[noreturn]] void child_overlayfs_maps(const char *dir) {
  char l[512], u[512], w[512], m[512], f[512], opts[2048];
  str_cat(l, sizeof(l), dir, "/l");
  str_cat(u, sizeof(u), dir, "/u");
  str_cat(w, sizeof(w), dir, "/w");
  str_cat(m, sizeof(m), dir, "/m");
  str_cat(f, sizeof(f), dir, "/m/test");
  size_t n = str_cat(opts, sizeof(opts), "lowerdir=", l);
  n += str_cat(opts + n, sizeof(opts) - n, ",upperdir=", u);
  n += str_cat(opts + n, sizeof(opts) - n, ",workdir=", w);
  if (rawsys(SYS_unshare, CLONE_NEWNS) < 0) child_exit(10);
  if (rawsys(SYS_mount, 0, (long)"/", 0, MS_SLAVE | MS_REC, 0) < 0) child_exit(11);
  if (rawsys(SYS_mount, (long)"tmpfs", (long)dir, (long)"tmpfs", 0, 0) < 0) child_exit(12);
  if (rawsys(SYS_mkdir, (long)l, 0755) < 0 || rawsys(SYS_mkdir, (long)u, 0755) < 0 || rawsys(SYS_mkdir, (long)w, 0755) < 0 ||
      rawsys(SYS_mkdir, (long)m, 0755) < 0)
    child_exit(13);
  long ovl = rawsys(SYS_mount, (long)"overlay", (long)m, (long)"overlay", 0, (long)opts);
  if (ovl == -ENODEV) child_exit(NO_SUCH_FS);
  if (ovl < 0) child_exit(14);
  long fd = rawsys(SYS_open, (long)f, O_RDWR | O_CREAT, 0644);
  if (fd < 0 || rawsys(SYS_ftruncate, fd, 4096) < 0) child_exit(15);
  long addr = rawsys(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, fd, 0);
  if (addr < 0 && addr > -4096) child_exit(16);
  struct stat st;
  if (rawsys(SYS_fstat, fd, (long)&st) < 0) child_exit(17);
  long mfd = rawsys(SYS_open, (long)"/proc/self/maps", O_RDONLY, 0);
  if (mfd < 0) child_exit(18);
  slurp_into_maps_buf(mfd);
  // find the line "addr-end perms offset maj:min inode path"
  for (const char *p = maps_buf; *p;) {
    const char *q;
    unsigned long start = parse_hex(p, &q);
    if (start == (unsigned long)addr) {
      int fields = 0;
      while (*q && fields < 3) {  // skip "-end", perms, offset
        if (*q == ' ') fields++;
        q++;
      }
      unsigned long maj = parse_hex(q, &q);
      if (*q++ != ':') child_exit(19);
      unsigned long min = parse_hex(q, &q);
      while (*q == ' ') q++;
      unsigned long ino = 0;
      for (; *q >= '0' && *q <= '9'; q++) ino = ino * 10 + (*q - '0');
      bool same = maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino;
      child_exit(same ? 0 : 1);
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  child_exit(20);
}

namespace {

// ---- autofs: mount an autofs in a private mount namespace and look for
// pipe_ino= in its mountinfo line. exit 0 yes, 1 no, NO_SUCH_FS no autofs in
// this kernel (mount says ENODEV once any module was tried), else could not test.
size_t put_num(char *dst, long v) {
  char tmp[24];
  size_t n = 0, k = 0;
  if (v == 0) tmp[n++] = '0';
  while (v > 0) {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  }
  while (n) dst[k++] = tmp[--n];
  dst[k] = 0;
  return k;
}

const char *find_str(const char *hay, const char *needle) {
  size_t nl = strlen(needle);
  for (; *hay; hay++)
    if (strncmp(hay, needle, nl) == 0) return hay;
  return nullptr;
}

}  // namespace

[[noreturn]] void child_autofs(const char *dir) {
  if (rawsys(SYS_unshare, CLONE_NEWNS) < 0) child_exit(10);
  if (rawsys(SYS_mount, 0, (long)"/", 0, MS_SLAVE | MS_REC, 0) < 0) child_exit(11);
  int p[2];
  if (rawsys(SYS_pipe2, (long)p, O_CLOEXEC) < 0) child_exit(12);
  char opts[256];
  size_t n = str_cat(opts, sizeof(opts), "fd=", "");
  n += put_num(opts + n, p[1]);
  n += str_cat(opts + n, sizeof(opts) - n, ",pgrp=", "");
  n += put_num(opts + n, rawsys(SYS_getpgid, 0));
  str_cat(opts + n, sizeof(opts) - n, ",minproto=5,maxproto=5,direct", "");
  long mnt = rawsys(SYS_mount, (long)"crtools", (long)dir, (long)"autofs", 0, (long)opts);
  if (mnt == -ENODEV) child_exit(NO_SUCH_FS);
  if (mnt < 0) child_exit(13);
  long mfd = rawsys(SYS_open, (long)"/proc/self/mountinfo", O_RDONLY, 0);
  if (mfd < 0) child_exit(14);
  slurp_into_maps_buf(mfd);
  const char *line = find_str(maps_buf, " - autofs ");
  if (!line) child_exit(15);
  const char *eol = line;
  while (*eol && *eol != '\n') eol++;
  const char *pi = find_str(line, "pipe_ino=");
  child_exit(pi && pi < eol ? 0 : 1);
}

}  // namespace crtools::kerndat
