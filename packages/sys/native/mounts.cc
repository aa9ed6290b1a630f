// @crtools/sys: mounts made, changed and removed inside another task's mount namespace. setns(2)
// into a mount namespace needs a thread whose fs state (root, cwd) is its own: a thread of its
// own unshares CLONE_FS first, joins the namespace, does the work and ends with it, so no other
// thread of this process ever leaves its own namespace.
#include "sys.h"

#include <cerrno>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// one step: mount(source, target, fstype, flags, data), or umount2(target, flags) when umount
struct MountOp {
  bool umount = false;
  bool has_source = false, has_fstype = false, has_data = false;
  std::string source, target, fstype, data;
  unsigned long flags = 0;
};

struct MountJob {
  std::string ns_path;
  std::vector<MountOp> ops;
  size_t done = 0;
  int err = 0;
  const char *syscall = nullptr;
};

void *MountThread(void *arg) {
  MountJob *j = (MountJob *)arg;
  if (unshare(CLONE_FS) < 0) {
    j->err = errno, j->syscall = "unshare";
    return nullptr;
  }
  int nfd = open(j->ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nfd < 0) {
    j->err = errno, j->syscall = "open";
    return nullptr;
  }
  int x = setns(nfd, CLONE_NEWNS);
  int e = errno;
  close(nfd);
  if (x < 0) {
    j->err = e, j->syscall = "setns";
    return nullptr;
  }
  for (auto &o : j->ops) {
    int r = o.umount ? umount2(o.target.c_str(), (int)o.flags)
                     : mount(o.has_source ? o.source.c_str() : nullptr, o.target.c_str(), o.has_fstype ? o.fstype.c_str() : nullptr, o.flags,
                             o.has_data ? o.data.c_str() : nullptr);
    if (r < 0) {
      j->err = errno, j->syscall = o.umount ? "umount2" : "mount";
      return nullptr;
    }
    j->done++;
  }
  return nullptr;
}

// mountOps(nsPath, ops: { umount?, source?, target, fstype?, flags, data? }[]) -> undefined
//   | { errno, syscall, done }: from inside the mount namespace nsPath names, each step in order
//   (done: how many steps succeeded before the failed one)
Napi::Value MountOps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  MountJob j;
  j.ns_path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array ops = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ops.Length(); i++) {
    Napi::Object o = ops.Get(i).As<Napi::Object>();
    MountOp m;
    m.umount = o.Has("umount") && o.Get("umount").ToBoolean().Value();
    m.target = o.Get("target").As<Napi::String>().Utf8Value();
    m.flags = (unsigned long)U64(o.Get("flags"));
    if (o.Has("source") && o.Get("source").IsString()) m.has_source = true, m.source = o.Get("source").As<Napi::String>().Utf8Value();
    if (o.Has("fstype") && o.Get("fstype").IsString()) m.has_fstype = true, m.fstype = o.Get("fstype").As<Napi::String>().Utf8Value();
    if (o.Has("data") && o.Get("data").IsString()) m.has_data = true, m.data = o.Get("data").As<Napi::String>().Utf8Value();
    j.ops.push_back(std::move(m));
  }
  pthread_t th;
  int r = pthread_create(&th, nullptr, MountThread, &j);
  if (r != 0) return SysErr(env, r, "pthread_create");
  pthread_join(th, nullptr);
  if (j.syscall) {
    Napi::Value err = SysErr(env, j.err, j.syscall);
    err.As<Napi::Object>().Set("done", Num(env, (double)j.done));
    return err;
  }
  return env.Undefined();
}

}  // namespace

void crtools::sys::AddMounts(Napi::Object exports) {
  Export(exports, "mountOps", MountOps);
}
