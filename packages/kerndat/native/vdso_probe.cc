// @crtools/kerndat: does the kernel still name a moved [vdso] in /proc/PID/maps?
#include "kerndat.h"

#include <csignal>
#include <cstdio>
#include <sys/mman.h>
#include <sys/wait.h>

#include <string>

namespace crtools::kerndat {
namespace {

using crtools::SysErr;

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

}  // namespace

void AddVdsoProbe(Napi::Object exports) {
  Export(exports, "vdsoMoveProbe", VdsoMoveProbe);
}

}  // namespace crtools::kerndat
