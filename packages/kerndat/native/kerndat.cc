// Thin native layer of @crtools/kerndat.
//
// Only what Node cannot do itself: raw system calls (with Buffers passed as
// pointers) and the few probes that need a forked child
// (ptrace abilities, special-mapping mremap, clone3 with set_tid, ...).
// Every forked child runs only raw system calls (it never returns into
// JavaScript) and is reaped here, with its own timeout.
// A failed system call comes back as { errno, syscall } (crtools::SysErr); TypeScript decides
// what it means. What a probe measures (the errno of each ptrace request a tracer tries, how
// a probe child ended) is data, not a failure: it comes back as plain fields.

#include <napi.h>

#include "crtools-napi.h"

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using crtools::SysErr;

// ---------------------------------------------------------------- helpers

// Raw syscall that returns -errno instead of touching errno (safe in a child).
inline long rawsys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long r = syscall(nr, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}

// A probe child's exit when mount(2) does not know the filesystem type (ENODEV):
// the kernel lacks it, which is an answer, not a failed probe.
constexpr int NO_SUCH_FS = 64;

[[noreturn]] inline void child_exit(int code) {
  syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

uint64_t arg_u64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    Napi::BigInt b = v.As<Napi::BigInt>();
    int64_t s = b.Int64Value(&lossless);
    if (lossless) return (uint64_t)s;
    return b.Uint64Value(&lossless);
  }
  if (v.IsNumber()) return (uint64_t)v.As<Napi::Number>().Int64Value();
  if (v.IsBuffer()) return (uint64_t)(uintptr_t)v.As<Napi::Buffer<uint8_t>>().Data();
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  return 0;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// waitpid with a deadline (WNOHANG polling). Returns pid, 0 on timeout, -errno.
pid_t wait_deadline(pid_t pid, int *status, int flags, int64_t deadline) {
  for (;;) {
    pid_t r = waitpid(pid, status, flags | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == pid) return r;
    if (now_ms() >= deadline) return 0;
    sleep_ms(1);
  }
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int st;
  int64_t deadline = now_ms() + 2000;
  while (wait_deadline(pid, &st, __WALL, deadline) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st)) {
  }
}

Napi::Object status_object(Napi::Env env, pid_t pid, int status, bool timed_out) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  o.Set("timedOut", timed_out);
  o.Set("exited", !timed_out && WIFEXITED(status));
  o.Set("code", !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  o.Set("signal", !timed_out && WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return o;
}

// ---------------------------------------------------------------- syscall

// syscall(nr, ...args) -> the return value (bigint) | { errno, syscall }
Napi::Value Syscall(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info.Length() > 7) {
    Napi::TypeError::New(env, "syscall(nr, ...up to 6 args)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  long nr = info[0].As<Napi::Number>().Int64Value();
  long a[6] = {0, 0, 0, 0, 0, 0};
  for (size_t i = 1; i < info.Length(); i++) a[i - 1] = (long)arg_u64(info[i]);
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r == -1) return SysErr(env, errno, "syscall");
  return Napi::BigInt::New(env, (int64_t)r);
}

Napi::Value AddressOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "addressOf(buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::BigInt::New(env, (uint64_t)(uintptr_t)info[0].As<Napi::Buffer<uint8_t>>().Data());
}

// ---------------------------------------------------------------- ptrace

// The breakpoint target; noinline so that its address is a real instruction.
extern "C" __attribute__((noinline)) void crtools_kerndat_bp_target(void) { __asm__ volatile("nop"); }

void install_allow_all_seccomp() {
  struct sock_filter filter[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {1, filter};
  syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

struct rseq_conf {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

// ptraceProbe({ seccomp, timeoutMs }) -> what a tracer can do with a stopped child (the errno
// of each request, 0 when it worked) | { errno, syscall } when the child cannot be forked
Napi::Value PtraceProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool with_seccomp = false;
  long timeout = 3000;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Has("seccomp")) with_seccomp = o.Get("seccomp").ToBoolean();
    if (o.Has("timeoutMs")) timeout = o.Get("timeoutMs").ToNumber().Int64Value();
  }
  pid_t pid = fork();
  if (pid < 0) return SysErr(env, errno, "fork");
  if (pid == 0) {
    if (with_seccomp) install_allow_all_seccomp();
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    crtools_kerndat_bp_target();
    child_exit(0);
  }
  Napi::Object out = Napi::Object::New(env);
  int64_t deadline = now_ms() + timeout;
  int st = 0;
  // 1. the child stops itself
  pid_t w = wait_deadline(pid, &st, WUNTRACED, deadline);
  if (w <= 0 || !WIFSTOPPED(st)) {
    out.Set("error", "child did not stop");
    kill_and_reap(pid);
    return out;
  }
  auto err_of = [](long r) { return r < 0 ? errno : 0; };
  // 2. seize + interrupt
  long r = ptrace((enum __ptrace_request)PTRACE_SEIZE, pid, 0, 0);
  out.Set("seize", err_of(r));
  if (r < 0) {
    kill_and_reap(pid);
    return out;
  }
  r = ptrace((enum __ptrace_request)PTRACE_INTERRUPT, pid, 0, 0);
  out.Set("interrupt", err_of(r));
  w = wait_deadline(pid, &st, __WALL, deadline);
  out.Set("interruptStop", w > 0 && WIFSTOPPED(st));
  if (w <= 0 || !WIFSTOPPED(st)) {
    kill_and_reap(pid);
    return out;
  }
  // 3. what a dumper needs
  struct {
    uint64_t off;
    uint32_t flags;
    int32_t nr;
  } psa = {0, 0, 1};
  siginfo_t si;
  r = ptrace((enum __ptrace_request)PTRACE_PEEKSIGINFO, pid, &psa, &si);
  out.Set("peeksiginfo", err_of(r));
  uint64_t mask = 0;
  r = ptrace((enum __ptrace_request)PTRACE_GETSIGMASK, pid, (void *)sizeof(mask), &mask);
  out.Set("getsigmask", err_of(r));
  r = ptrace((enum __ptrace_request)PTRACE_SETOPTIONS, pid, 0, (void *)(long)PTRACE_O_SUSPEND_SECCOMP);
  out.Set("suspendSeccomp", err_of(r));
  if (with_seccomp) {
    r = ptrace((enum __ptrace_request)PTRACE_SECCOMP_GET_FILTER, pid, 0, nullptr);
    out.Set("seccompGetFilter", err_of(r));
    out.Set("seccompFilterLen", r < 0 ? -1 : (double)r);
  }
  struct rseq_conf rc;
  memset(&rc, 0, sizeof(rc));
  r = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(rc), &rc);
  out.Set("getRseqConf", err_of(r));
  if (r >= 0) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("rseq_abi_pointer", Napi::BigInt::New(env, rc.rseq_abi_pointer));
    c.Set("rseq_abi_size", rc.rseq_abi_size);
    c.Set("signature", rc.signature);
    c.Set("flags", rc.flags);
    out.Set("rseqConf", c);
  }
  static uint8_t xbuf[64 * 1024];
  struct iovec iov = {xbuf, sizeof(xbuf)};
  r = ptrace((enum __ptrace_request)PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov);
  out.Set("getregsetXstate", err_of(r));
  out.Set("xstateSize", r < 0 ? 0 : (double)iov.iov_len);
  // 4. hardware breakpoint: DR0 = target, DR7 = local enable, execute, 1 byte
  long dr0 = offsetof(struct user, u_debugreg[0]);
  long dr7 = offsetof(struct user, u_debugreg[7]);
  r = ptrace(PTRACE_POKEUSER, pid, (void *)dr0, (void *)&crtools_kerndat_bp_target);
  if (r == 0) r = ptrace(PTRACE_POKEUSER, pid, (void *)dr7, (void *)1L);
  out.Set("pokeDebugreg", err_of(r));
  bool bp_hit = false;
  if (r == 0 && ptrace(PTRACE_CONT, pid, 0, 0) == 0) {
    for (;;) {
      w = wait_deadline(pid, &st, __WALL, deadline);
      if (w <= 0 || !WIFSTOPPED(st)) break;
      int sig = WSTOPSIG(st);
      if (sig == SIGTRAP && (st >> 16) == 0) {
        bp_hit = true;
        break;
      }
      // group-stop/event stops: keep it going without delivering signals
      if (ptrace(PTRACE_CONT, pid, 0, 0) != 0) break;
    }
  }
  out.Set("breakpointHit", bp_hit);
  kill_and_reap(pid);
  return out;
}

// ---------------------------------------------------------------- forked probes

void noop_handler(int) {}

// Child of the special-mapping mremap probe: move every [start,size) pair to a
// parking lot, then take a signal (which needs the kernel to know where they went).
[[noreturn]] void child_mremap_special(const uint64_t *pairs, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += pairs[2 * i + 1];
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = noop_handler;
  if (sigaction(SIGUSR1, &sa, nullptr) != 0) child_exit(2);
  long lot = rawsys(SYS_mmap, 0, (long)total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (lot < 0 && lot > -4096) child_exit(3);
  for (size_t i = 0; i < n; i++) {
    long r = rawsys(SYS_mremap, (long)pairs[2 * i], (long)pairs[2 * i + 1], (long)pairs[2 * i + 1],
                    MREMAP_MAYMOVE | MREMAP_FIXED, lot);
    if (r != lot) child_exit(4);
    lot += (long)pairs[2 * i + 1];
  }
  syscall(SYS_kill, syscall(SYS_getpid), SIGUSR1);
  child_exit(0);
}

[[noreturn]] void child_sigqueueinfo() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &sa, nullptr);
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  si.si_code = 1;  // positive si_code: only allowed towards oneself
  si.si_signo = SIGUSR1;
  long r = rawsys(SYS_rt_sigqueueinfo, syscall(SYS_getpid), SIGUSR1, (long)&si);
  child_exit(r < 0 ? 1 : 0);
}

// CRIU's test: with ARCH_MAP_VDSO_* known and a vDSO mapped, the kernel says EEXIST.
[[noreturn]] void child_arch_map_vdso(long code) {
  long r = rawsys(SYS_arch_prctl, code, 0);
  if (r == 0 || r == -EEXIST) child_exit(1);
  child_exit(0);
}

// CLONE_NEWPID | CLONE_PARENT from an intermediate child, so that we (the
// first child) can reap the grandchild: exit 0 when the kernel allows it.
[[noreturn]] void child_clone_parent_newpid() {
  long mid = rawsys(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (mid < 0) child_exit(3);
  if (mid == 0) {
    long g = rawsys(SYS_clone, CLONE_NEWPID | CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (g == 0) child_exit(0);
    child_exit(g < 0 ? 1 : 0);
  }
  int st, result = 2;
  // reap the middle child and the grandchild it gave us
  for (int i = 0; i < 2; i++) {
    long p = rawsys(SYS_wait4, -1, (long)&st, __WALL, 0);
    if (p < 0) break;
    if (p == mid) result = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
    if (p == mid && result != 0) break;
  }
  child_exit(result);
}

// The loginuid of the child: unset it and put it back (needs v3.13+ semantics).
long read_small_file(const char *path, char *buf, long len) {
  long fd = rawsys(SYS_open, (long)path, O_RDONLY, 0);
  if (fd < 0) return fd;
  long n = rawsys(SYS_read, fd, (long)buf, len - 1);
  rawsys(SYS_close, fd);
  if (n >= 0) buf[n] = 0;
  return n;
}
long write_small_file(const char *path, const char *buf, long len) {
  long fd = rawsys(SYS_open, (long)path, O_WRONLY, 0);
  if (fd < 0) return fd;
  long n = rawsys(SYS_write, fd, (long)buf, len);
  rawsys(SYS_close, fd);
  return n;
}
[[noreturn]] void child_loginuid() {
  char saved[32];
  if (read_small_file("/proc/self/loginuid", saved, sizeof(saved)) <= 0) child_exit(2);
  long len = 0;
  while (saved[len] >= '0' && saved[len] <= '9') len++;
  if (write_small_file("/proc/self/loginuid", "4294967295", 10) < 0) child_exit(1);
  if (write_small_file("/proc/self/loginuid", saved, len) < 0) child_exit(1);
  child_exit(0);
}


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

// mseal(2) (6.10+): a sealed mapping can no longer be unmapped. Sealing is for
// the life of the process, hence the child. exit 0: sealed and munmap refused.
[[noreturn]] void child_mseal() {
  long addr = rawsys(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr < 0 && addr > -4096) child_exit(3);
  long r = rawsys(462 /* mseal */, addr, 4096, 0);
  if (r < 0) child_exit(1);
  child_exit(rawsys(SYS_munmap, addr, 4096) == -EPERM ? 0 : 2);
}

// ---- link_nsid: a veth whose peer lives in another network namespace is
// reported with IFLA_LINK_NETNSID. Done in a child inside two fresh network
// namespaces; both (and the veth pair) vanish when it exits.

struct nlbuf {
  char data[1024];
  size_t len;
};

struct rtattr *nl_attr(nlbuf *b, unsigned short type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(b->len);
  struct rtattr *a = (struct rtattr *)(b->data + off);
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  b->len = off + RTA_ALIGN(a->rta_len);
  return a;
}
void nl_nest_end(nlbuf *b, struct rtattr *a) { a->rta_len = (unsigned short)(b->data + b->len - (char *)a); }

// send one request; return the kernel's errno (0 = ok) or, with `reply`, copy the first answer
long nl_talk(long sk, nlbuf *b, char *reply, size_t cap) {
  struct nlmsghdr *h = (struct nlmsghdr *)b->data;
  h->nlmsg_len = (unsigned)b->len;
  if (rawsys(SYS_sendto, sk, (long)b->data, (long)b->len, 0, 0, 0) < 0) return -1000;
  static char rbuf[16384];
  long n = rawsys(SYS_recvfrom, sk, (long)rbuf, sizeof(rbuf), 0, 0, 0);
  if (n < (long)sizeof(struct nlmsghdr)) return -1001;
  struct nlmsghdr *r = (struct nlmsghdr *)rbuf;
  if (r->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
  if (reply) memcpy(reply, rbuf, (size_t)n < cap ? (size_t)n : cap);
  return 0;
}

[[noreturn]] void child_link_nsid() {
  if (rawsys(SYS_unshare, CLONE_NEWNET) < 0) child_exit(10);
  long peer_ns = rawsys(SYS_open, (long)"/proc/self/ns/net", O_RDONLY, 0);
  if (peer_ns < 0) child_exit(11);
  if (rawsys(SYS_unshare, CLONE_NEWNET) < 0) child_exit(12);
  long sk = rawsys(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (sk < 0) child_exit(13);

  // RTM_NEWLINK: veth "crkd0" here, its peer "crkd1" in the first namespace
  nlbuf b;
  memset(&b, 0, sizeof(b));
  struct nlmsghdr *h = (struct nlmsghdr *)b.data;
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  h->nlmsg_seq = 1;
  b.len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  nl_attr(&b, IFLA_IFNAME, "crkd0", 6);
  struct rtattr *info = nl_attr(&b, IFLA_LINKINFO, nullptr, 0);
  nl_attr(&b, IFLA_INFO_KIND, "veth", 4);
  struct rtattr *data = nl_attr(&b, IFLA_INFO_DATA, nullptr, 0);
  struct rtattr *peer = nl_attr(&b, VETH_INFO_PEER, nullptr, 0);
  b.len += sizeof(struct ifinfomsg);  // the peer's (empty) ifinfomsg
  nl_attr(&b, IFLA_IFNAME, "crkd1", 6);
  int nsfd = (int)peer_ns;
  nl_attr(&b, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
  nl_nest_end(&b, peer);
  nl_nest_end(&b, data);
  nl_nest_end(&b, info);
  if (nl_talk(sk, &b, nullptr, 0) != 0) child_exit(14);  // no veth: cannot tell

  // RTM_GETLINK crkd0: does the answer carry IFLA_LINK_NETNSID?
  memset(&b, 0, sizeof(b));
  h = (struct nlmsghdr *)b.data;
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = 2;
  b.len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  nl_attr(&b, IFLA_IFNAME, "crkd0", 6);
  static char reply[16384];
  if (nl_talk(sk, &b, reply, sizeof(reply)) != 0) child_exit(15);
  struct nlmsghdr *r = (struct nlmsghdr *)reply;
  if (r->nlmsg_type != RTM_NEWLINK) child_exit(16);
  int len = (int)r->nlmsg_len - NLMSG_LENGTH(sizeof(struct ifinfomsg));
  for (struct rtattr *a = IFLA_RTA(NLMSG_DATA(r)); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFLA_LINK_NETNSID) child_exit(0);
  child_exit(1);
}

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

// forkProbe(kind, args: bigint[], timeoutMs, path) -> child status | { errno, syscall }
Napi::Value ForkProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "forkProbe(kind, args?, timeoutMs?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  uint64_t args[32];
  size_t nargs = 0;
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && nargs < 32; i++) args[nargs++] = arg_u64(a.Get(i));
  }
  long timeout = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 3000;
  // a path argument (overlayfs_maps: an empty directory to work in)
  std::string path = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  int k;
  if (kind == "mremap_special") k = 1;
  else if (kind == "sigqueueinfo") k = 2;
  else if (kind == "arch_map_vdso") k = 3;
  else if (kind == "clone_parent_newpid") k = 4;
  else if (kind == "loginuid") k = 5;
  else if (kind == "overlayfs_maps") k = 6;
  else if (kind == "mseal") k = 7;
  else if (kind == "link_nsid") k = 8;
  else if (kind == "autofs") k = 9;
  else {
    Napi::TypeError::New(env, "unknown fork probe " + kind).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t pid = fork();
  if (pid < 0) return SysErr(env, errno, "fork");
  if (pid == 0) {
    switch (k) {
      case 1: child_mremap_special(args, nargs / 2);
      case 2: child_sigqueueinfo();
      case 3: child_arch_map_vdso(nargs > 0 ? (long)args[0] : 0x2002);
      case 4: child_clone_parent_newpid();
      case 5: child_loginuid();
      case 6: child_overlayfs_maps(path.c_str());
      case 7: child_mseal();
      case 8: child_link_nsid();
      case 9: child_autofs(path.c_str());
    }
    child_exit(127);
  }
  int st = 0;
  pid_t w = wait_deadline(pid, &st, __WALL, now_ms() + timeout);
  if (w <= 0) {
    kill_and_reap(pid);
    return status_object(env, pid, 0, true);
  }
  return status_object(env, pid, st, false);
}

// clone3SetTid(tid) -> pid | { errno, syscall }: fork a child at a chosen pid (it exits at once
// and is reaped).
Napi::Value Clone3SetTid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t tid = info.Length() > 0 ? (int64_t)arg_u64(info[0]) : -1;
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
  } ca;
  memset(&ca, 0, sizeof(ca));
  pid_t want = (pid_t)tid;
  ca.exit_signal = SIGCHLD;
  ca.set_tid = (uint64_t)(uintptr_t)&want;
  ca.set_tid_size = 1;
  long r = syscall(435 /* clone3 */, &ca, sizeof(ca));
  if (r == 0) child_exit(0);
  if (r < 0) return SysErr(env, errno, "clone3");
  int st = 0;
  if (wait_deadline((pid_t)r, &st, __WALL, now_ms() + 3000) <= 0) kill_and_reap((pid_t)r);
  return Napi::Number::New(env, (double)r);
}

// vdsoMoveProbe(start, size, timeoutMs): a child moves its [vdso] elsewhere and
// stops itself; we read its /proc/PID/maps while it is stopped (does the kernel
// still name the moved area [vdso]?), then kill and reap it. -> { pid, newStart, stopped, maps?,
// exitCode? } | { errno, syscall } when no destination can be found or the child cannot be forked
Napi::Value VdsoMoveProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t start = info.Length() > 0 ? arg_u64(info[0]) : 0;
  uint64_t size = info.Length() > 1 ? arg_u64(info[1]) : 0;
  long timeout = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 3000;
  // the destination is chosen before fork, so both sides know it
  long dst = rawsys(SYS_mmap, 0, (long)size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (dst < 0 && dst > -4096) return SysErr(env, (int)-dst, "mmap");
  rawsys(SYS_munmap, dst, (long)size);
  pid_t pid = fork();
  if (pid < 0) return SysErr(env, errno, "fork");
  if (pid == 0) {
    long r = rawsys(SYS_mremap, (long)start, (long)size, (long)size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    if (r != dst) child_exit(2);
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    child_exit(3);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  o.Set("newStart", Napi::BigInt::New(env, (uint64_t)dst));
  int st = 0;
  pid_t w = wait_deadline(pid, &st, WUNTRACED, now_ms() + timeout);
  bool stopped = w == pid && WIFSTOPPED(st);
  o.Set("stopped", stopped);
  if (stopped) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    std::string text;
    FILE *f = fopen(path, "r");
    if (f) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
      fclose(f);
    }
    o.Set("maps", text);
  }
  if (w == pid && (WIFEXITED(st) || WIFSIGNALED(st))) {
    o.Set("exitCode", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    return o;
  }
  kill_and_reap(pid);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("syscall", Napi::Function::New(env, Syscall));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
  exports.Set("ptraceProbe", Napi::Function::New(env, PtraceProbe));
  exports.Set("forkProbe", Napi::Function::New(env, ForkProbe));
  exports.Set("clone3SetTid", Napi::Function::New(env, Clone3SetTid));
  exports.Set("vdsoMoveProbe", Napi::Function::New(env, VdsoMoveProbe));
  return exports;
}

}  // namespace

NODE_API_MODULE(kerndat, Init)
