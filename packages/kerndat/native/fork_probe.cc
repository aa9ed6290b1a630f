// @crtools/kerndat: probes answered by a forked child running raw system calls: special
// mappings moved with mremap, rt_sigqueueinfo, ARCH_MAP_VDSO_*, CLONE_NEWPID|CLONE_PARENT,
// loginuid, mseal, and (from mounts.cc and netlink.cc) overlayfs, autofs and link_nsid.
#include "kerndat.h"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <string>

namespace crtools::kerndat {
namespace {

using crtools::SysErr;

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

// mseal(2) (6.10+): a sealed mapping can no longer be unmapped. Sealing is for
// the life of the process, hence the child. exit 0: sealed and munmap refused.
[[noreturn]] void child_mseal() {
  long addr = rawsys(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr < 0 && addr > -4096) child_exit(3);
  long r = rawsys(462 /* mseal */, addr, 4096, 0);
  if (r < 0) child_exit(1);
  child_exit(rawsys(SYS_munmap, addr, 4096) == -EPERM ? 0 : 2);
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

}  // namespace

void AddForkProbe(Napi::Object exports) {
  Export(exports, "forkProbe", ForkProbe);
}

}  // namespace crtools::kerndat
