// @crtools/parasite: processes and threads: waiting for a tracee's stop with a timeout, a look at
// whether it has stopped, tgkill, and starting a program that is not a child of Node (for tests).
#include "parasite.h"
#include "crtools-wait.h"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using namespace crtools::parasite;
using crtools::SysErr;

// wait(pid, timeoutMs) -> { pid, status } (pid 0: timed out) | { errno, syscall }
// The thread sleeps in waitpid until the stop or exit (crtools-wait.h), the CPU left to the tracee.
Napi::Value Wait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int status = 0;
  pid_t r = crtools::WaitPidFor(I32(info[0]), &status, __WALL, info[1].As<Napi::Number>().DoubleValue());
  if (r < 0) return SysErr(env, errno, "waitpid");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Num(env, (double)r));
  o.Set("status", Num(env, status));
  return o;
}

// peekStop(tid) -> { state: 0 running | 1 stopped | 2 exited, status } | { errno, syscall }: what a
// waitpid on the traced thread would collect now, left to be collected (waitid WNOWAIT); status is
// the stop's value as waitpid's status >> 8 has it (signal | event << 8), or the exit's si_status
Napi::Value PeekStop(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  siginfo_t si = {};
  if (waitid(P_PID, (id_t)I32(info[0]), &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0) return SysErr(env, errno, "waitid");
  Napi::Object o = Napi::Object::New(env);
  int state = si.si_pid == 0 ? 0 : (si.si_code == CLD_TRAPPED || si.si_code == CLD_STOPPED) ? 1 : 2;
  o.Set("state", Num(env, state));
  o.Set("status", Num(env, si.si_status));
  return o;
}

// spawnDetached(path, argv[]) -> pid of a grandchild running path (not a child of Node) | { errno, syscall }
// The intermediate child forks, reports the grandchild pid through a pipe and exits;
// it runs only async-signal-safe calls.
Napi::Value SpawnDetached(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < arr.Length(); i++) args.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back((char *)a.c_str());
  argv.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return SysErr(info.Env(), errno, "pipe2");
  pid_t c = fork();
  if (c < 0) { int e = errno; close(p[0]); close(p[1]); return SysErr(info.Env(), e, "fork"); }
  if (c == 0) {
    setsid();
    pid_t g = fork();
    if (g == 0) {
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); }
      sigset_t all; sigemptyset(&all); sigprocmask(SIG_SETMASK, &all, nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    int32_t v = g < 0 ? -errno : g;
    (void)!write(p[1], &v, sizeof(v));
    _exit(0);
  }
  close(p[1]);
  int32_t v = -EIO;
  ssize_t n;
  do n = read(p[0], &v, sizeof(v)); while (n < 0 && errno == EINTR);
  close(p[0]);
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
  if (v < 0) return SysErr(info.Env(), -v, "fork");
  return Num(info.Env(), v);
}

// tgkill(tgid, tid, sig) -> 0 | { errno, syscall }
Napi::Value Tgkill(const Napi::CallbackInfo &info) {
  return Result(info.Env(), syscall(SYS_tgkill, I32(info[0]), I32(info[1]), I32(info[2])), "tgkill");
}

}  // namespace

void crtools::parasite::AddTasks(Napi::Object exports) {
  Export(exports, "wait", Wait);
  Export(exports, "peekStop", PeekStop);
  Export(exports, "spawnDetached", SpawnDetached);
  Export(exports, "tgkill", Tgkill);
}
