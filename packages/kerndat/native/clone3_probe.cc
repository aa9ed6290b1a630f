// @crtools/kerndat: clone3 with set_tid: a child at a chosen pid.
#include "kerndat.h"

#include <csignal>
#include <cstring>
#include <sys/wait.h>

namespace crtools::kerndat {
namespace {

using crtools::SysErr;

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

}  // namespace

void AddClone3Probe(Napi::Object exports) {
  Export(exports, "clone3SetTid", Clone3SetTid);
}

}  // namespace crtools::kerndat
