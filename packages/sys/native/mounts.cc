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
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// one step: mount(source, target, fstype, flags, data), or umount2(target, flags) when umount, or
// pivot: target becomes the namespace's root (pivot_root(2) with new and old root the same
// directory, the old root then detached: every task whose root was the old one is moved over), or
// group_from >= 0: the mount at target joins the propagation of the mount whose root that
// descriptor of this process is on (move_mount(2) MOVE_MOUNT_SET_GROUP: its peer group, its master)
struct MountOp {
  bool umount = false;
  bool pivot = false;
  int group_from = -1;
  // bind_fd >= 0: a bind (not recursive) of source, relative to the mount root that descriptor of
  // this process is on ('' that root), put at target: open_tree(OPEN_TREE_CLONE) + move_mount,
  // which reach the mount even where others now cover it
  int bind_fd = -1;
  bool has_source = false, has_fstype = false, has_data = false;
  std::string source, target, fstype, data;
  unsigned long flags = 0;
};

struct MountJob {
  std::string ns_path;
  // namespaces (other than the mount one) joined too: a mount of sysfs or mqueue shows those
  std::vector<std::string> join;
  std::vector<MountOp> ops;
  size_t done = 0;
  int err = 0;
  const char *syscall = nullptr;
};

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
constexpr unsigned kOpenTreeClone = 1;          // OPEN_TREE_CLONE
constexpr unsigned kOpenTreeCloexec = O_CLOEXEC;  // OPEN_TREE_CLOEXEC
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
constexpr unsigned kMoveMountFEmptyPath = 0x4;  // MOVE_MOUNT_F_EMPTY_PATH
constexpr unsigned kMoveMountTEmptyPath = 0x40;  // MOVE_MOUNT_T_EMPTY_PATH
constexpr unsigned kMoveMountSetGroup = 0x100;   // MOVE_MOUNT_SET_GROUP (Linux 5.15)

void *MountThread(void *arg) {
  MountJob *j = (MountJob *)arg;
  if (unshare(CLONE_FS) < 0) {
    j->err = errno, j->syscall = "unshare";
    return nullptr;
  }
  // every namespace opened from here first: /proc inside the mount namespace may be another pid
  // namespace's, or one this task may not look into
  std::vector<int> fds;
  auto closeAll = [&fds]() {
    for (int f : fds)
      if (f >= 0) close(f);
  };
  fds.push_back(open(j->ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  for (auto &p : j->join) fds.push_back(fds.back() < 0 ? -1 : open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (fds.back() < 0) {
    j->err = errno, j->syscall = "open";
    closeAll();
    return nullptr;
  }
  for (size_t i = 0; i < fds.size(); i++) {
    if (setns(fds[i], i ? 0 : CLONE_NEWNS) < 0) {
      j->err = errno, j->syscall = "setns";
      closeAll();
      return nullptr;
    }
  }
  closeAll();
  for (auto &o : j->ops) {
    if (o.pivot) {
      if (chdir(o.target.c_str()) < 0) {
        j->err = errno, j->syscall = "chdir";
        return nullptr;
      }
      if (syscall(SYS_pivot_root, ".", ".") < 0) {
        j->err = errno, j->syscall = "pivot_root";
        return nullptr;
      }
      if (umount2(".", MNT_DETACH) < 0) {
        j->err = errno, j->syscall = "umount2";
        return nullptr;
      }
      if (chdir("/") < 0) {
        j->err = errno, j->syscall = "chdir";
        return nullptr;
      }
      j->done++;
      continue;
    }
    if (o.bind_fd >= 0) {
      const char *rel = o.source.c_str();
      while (*rel == '/') rel++;
      long t = syscall(SYS_open_tree, o.bind_fd, rel, kOpenTreeClone | kOpenTreeCloexec | (*rel ? 0 : AT_EMPTY_PATH));
      if (t < 0) {
        j->err = errno, j->syscall = "open_tree";
        return nullptr;
      }
      long r = syscall(SYS_move_mount, (int)t, "", AT_FDCWD, o.target.c_str(), kMoveMountFEmptyPath);
      int e = errno;
      close((int)t);
      if (r < 0) {
        j->err = e, j->syscall = "move_mount";
        return nullptr;
      }
      j->done++;
      continue;
    }
    if (o.group_from >= 0) {
      int t = open(o.target.c_str(), O_PATH | O_CLOEXEC);
      if (t < 0) {
        j->err = errno, j->syscall = "open";
        return nullptr;
      }
      long r = syscall(SYS_move_mount, o.group_from, "", t, "", kMoveMountSetGroup | kMoveMountFEmptyPath | kMoveMountTEmptyPath);
      int e = errno;
      close(t);
      if (r < 0) {
        j->err = e, j->syscall = "move_mount";
        return nullptr;
      }
      j->done++;
      continue;
    }
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

// mountOps(nsPath, ops: { umount?, pivot?, groupFrom?, bindFd?, source?, target, fstype?, flags, data? }[], join?: string[])
//   -> undefined | { errno, syscall, done }: from inside the mount namespace nsPath names (and the
//   namespaces join names), each step in order (done: how many steps succeeded before the failed one)
Napi::Value MountOps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  MountJob j;
  j.ns_path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array ops = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ops.Length(); i++) {
    Napi::Object o = ops.Get(i).As<Napi::Object>();
    MountOp m;
    m.umount = o.Has("umount") && o.Get("umount").ToBoolean().Value();
    m.pivot = o.Has("pivot") && o.Get("pivot").ToBoolean().Value();
    if (o.Has("groupFrom") && o.Get("groupFrom").IsNumber()) m.group_from = o.Get("groupFrom").As<Napi::Number>().Int32Value();
    if (o.Has("bindFd") && o.Get("bindFd").IsNumber()) m.bind_fd = o.Get("bindFd").As<Napi::Number>().Int32Value();
    m.target = o.Get("target").As<Napi::String>().Utf8Value();
    m.flags = (unsigned long)U64(o.Get("flags"));
    if (o.Has("source") && o.Get("source").IsString()) m.has_source = true, m.source = o.Get("source").As<Napi::String>().Utf8Value();
    if (o.Has("fstype") && o.Get("fstype").IsString()) m.has_fstype = true, m.fstype = o.Get("fstype").As<Napi::String>().Utf8Value();
    if (o.Has("data") && o.Get("data").IsString()) m.has_data = true, m.data = o.Get("data").As<Napi::String>().Utf8Value();
    j.ops.push_back(std::move(m));
  }
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array join = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < join.Length(); i++) j.join.push_back(join.Get(i).As<Napi::String>().Utf8Value());
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

struct CloneJob {
  std::string ns_path, root, path;
  // mount points (as the task sees them) unmounted first, last first, in a private copy of the
  // namespace: the mounts that cover the one at path
  std::vector<std::string> uncover;
  int fd = -1;
  int err = 0;
  const char *syscall = nullptr;
};

void *CloneThread(void *arg) {
  CloneJob *j = (CloneJob *)arg;
  if (unshare(CLONE_FS) < 0) {
    j->err = errno, j->syscall = "unshare";
    return nullptr;
  }
  // the task's root, opened from here (the namespace's /proc may show another pid namespace)
  int rfd = open(j->root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) {
    j->err = errno, j->syscall = "open";
    return nullptr;
  }
  int nfd = open(j->ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nfd < 0 || setns(nfd, CLONE_NEWNS) < 0) {
    j->err = errno, j->syscall = nfd < 0 ? "open" : "setns";
    if (nfd >= 0) close(nfd);
    close(rfd);
    return nullptr;
  }
  close(nfd);
  const char *rel = j->path.c_str();
  while (*rel == '/') rel++;
  int at = rfd;
  if (!j->uncover.empty()) {
    // from the task's root, in a copy of the namespace of this thread's own (the copy takes the
    // thread's working directory along), private throughout so that no unmount reaches the
    // task's namespace, the covering mounts detached
    const char *failed = fchdir(rfd) < 0 ? "fchdir" : unshare(CLONE_NEWNS) < 0 ? "unshare" : mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ? "mount" : nullptr;
    if (failed) {
      j->err = errno, j->syscall = failed;
      close(rfd);
      return nullptr;
    }
    for (auto &u : j->uncover) {
      const char *r = u.c_str();
      while (*r == '/') r++;
      if (umount2(*r ? r : ".", MNT_DETACH) < 0) {
        j->err = errno, j->syscall = "umount2";
        close(rfd);
        return nullptr;
      }
    }
    at = AT_FDCWD;
  }
  long fd = syscall(SYS_open_tree, at, *rel ? rel : ".", kOpenTreeClone | kOpenTreeCloexec);
  if (fd < 0) j->err = errno, j->syscall = "open_tree";
  else j->fd = (int)fd;
  close(rfd);
  return nullptr;
}

// cloneMount(nsPath, root, path, uncover?) -> fd | { errno, syscall }: from inside the mount
// namespace nsPath names, a detached copy of the one mount at path (below root, a task's
// /proc/PID/root), without the mounts on it (open_tree OPEN_TREE_CLONE, not recursive): what they
// hide shows; with uncover, the mount that is at path once those mount points are unmounted (last
// first) in a private copy of the namespace (a mount covered by others)
Napi::Value CloneMount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CloneJob j;
  j.ns_path = info[0].As<Napi::String>().Utf8Value();
  j.root = info[1].As<Napi::String>().Utf8Value();
  j.path = info[2].As<Napi::String>().Utf8Value();
  if (info.Length() > 3 && info[3].IsArray()) {
    Napi::Array u = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < u.Length(); i++) j.uncover.push_back(u.Get(i).As<Napi::String>().Utf8Value());
  }
  pthread_t th;
  int r = pthread_create(&th, nullptr, CloneThread, &j);
  if (r != 0) return SysErr(env, r, "pthread_create");
  pthread_join(th, nullptr);
  if (j.syscall) return SysErr(env, j.err, j.syscall);
  return Num(env, j.fd);
}

}  // namespace

void crtools::sys::AddMounts(Napi::Object exports) {
  Export(exports, "mountOps", MountOps);
  Export(exports, "cloneMount", CloneMount);
}
