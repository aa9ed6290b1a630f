// @crtools/sys: questions about processes and time: kcmp(2) and clock_gettime(2).
#include "sys.h"

#include <cerrno>
#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// kcmp(pid1, pid2, type, idx1, idx2) -> 0 same object, 1/2 ordered, 3 different | { errno, syscall }
Napi::Value Kcmp(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_kcmp, I32(info[0]), I32(info[1]), I32(info[2]), (unsigned long)U64(info[3]), (unsigned long)U64(info[4]));
  if (r < 0) return SysErr(info.Env(), errno, "kcmp");
  return Num(info.Env(), (double)r);
}

// kcmpEpollTfd(pid, fd, efd, tfd, toff) -> 0 when the task's fd is the file the task's epoll efd
// watches as target tfd (the toff-th target of that number) | { errno, syscall }
Napi::Value KcmpEpollTfd(const Napi::CallbackInfo &info) {
  struct { uint32_t efd, tfd, toff; } slot = { (uint32_t)I32(info[2]), (uint32_t)I32(info[3]), (uint32_t)I32(info[4]) };
  long r = syscall(SYS_kcmp, I32(info[0]), I32(info[0]), 7 /* KCMP_EPOLL_TFD */, (unsigned long)(uint32_t)I32(info[1]), (unsigned long)&slot);
  if (r < 0) return SysErr(info.Env(), errno, "kcmp");
  return Num(info.Env(), (double)r);
}

// clockGettime(clockid) -> [sec, nsec] | { errno, syscall }
Napi::Value ClockGettime(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct timespec ts;
  if (clock_gettime(I32(info[0]), &ts) < 0) return SysErr(env, errno, "clock_gettime");
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Num(env, (double)ts.tv_sec));
  r.Set(1u, Num(env, (double)ts.tv_nsec));
  return r;
}

}  // namespace

void crtools::sys::AddProcess(Napi::Object exports) {
  Export(exports, "kcmp", Kcmp);
  Export(exports, "kcmpEpollTfd", KcmpEpollTfd);
  Export(exports, "clockGettime", ClockGettime);
}
