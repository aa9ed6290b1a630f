// @crtools/sys: questions about processes and time: kcmp(2), clock_gettime(2), files read
// or written from inside another task's namespace (setns(2) on a thread of its own), and the
// kill of processes whose memory we free ourselves (pidfd_open, pidfd_send_signal, process_mrelease).
#include "sys.h"

#include <cerrno>
#include <csignal>
#include <functional>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

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

// The work of nsFiles, done on a thread of its own: setns(2) of the kinds that allow it (UTS,
// IPC, net, time) moves only the calling thread, and the thread ends with it, so no other thread
// of this process ever sees the namespace.
struct NsJob {
  std::string ns_path;
  int ns_type = 0;
  std::vector<std::pair<std::string, std::string>> writes;
  std::vector<std::string> reads;
  // a read that fails leaves its place empty (missing[i]) instead of failing the call
  bool optional = false;
  // the effective ids the thread takes first (-1: its own): the owner of the files of a namespace
  // whose user namespace's root is not ours (an IPC namespace's sysctls are its root's to write)
  long as_uid = -1, as_gid = -1;
  // the file that failed
  std::string failed_path;
  std::vector<std::string> out;
  std::vector<bool> missing;
  int err = 0;
  const char *syscall = nullptr;
};

void NsWork(NsJob *j) {
  int e;
  // (raw calls: this thread's own credentials, not the whole process's as glibc's would change)
  if (j->as_gid >= 0 && syscall(SYS_setresgid, -1, j->as_gid, -1) < 0) {
    j->err = errno, j->syscall = "setresgid";
    return;
  }
  if (j->as_uid >= 0 && syscall(SYS_setresuid, -1, j->as_uid, -1) < 0) {
    j->err = errno, j->syscall = "setresuid";
    return;
  }
  for (auto &w : j->writes) {
    int fd = open(w.first.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      j->err = errno, j->syscall = "open", j->failed_path = w.first;
      return;
    }
    ssize_t n = write(fd, w.second.data(), w.second.size());
    e = errno;
    close(fd);
    if (n != (ssize_t)w.second.size()) {
      j->err = n < 0 ? e : EIO, j->syscall = "write", j->failed_path = w.first;
      return;
    }
  }
  for (auto &p : j->reads) {
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && j->optional) {
      j->out.emplace_back();
      j->missing.push_back(true);
      continue;
    }
    if (fd < 0) {
      j->err = errno, j->syscall = "open", j->failed_path = p;
      return;
    }
    std::string data;
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && j->optional) {
        data.clear();
        break;
      }
      if (n < 0) {
        j->err = errno, j->syscall = "read", j->failed_path = p;
        close(fd);
        return;
      }
      if (n == 0) break;
      data.append(buf, (size_t)n);
    }
    close(fd);
    // (an optional file that could not be read: no content, marked missing)
    j->missing.push_back(j->optional && data.empty());
    j->out.push_back(std::move(data));
  }
}

struct NsRun {
  const std::string *path;
  int type;
  const std::function<void()> *work;
  int err = 0;
  const char *syscall = nullptr;
};

void *NsThread(void *arg) {
  NsRun *r = (NsRun *)arg;
  // no namespace named: a thread of its own all the same (one that may unshare and end)
  if (r->path->empty()) {
    (*r->work)();
    return nullptr;
  }
  int nfd = open(r->path->c_str(), O_RDONLY | O_CLOEXEC);
  if (nfd < 0) {
    r->err = errno, r->syscall = "open";
    return nullptr;
  }
  int x = setns(nfd, r->type);
  int e = errno;
  close(nfd);
  if (x < 0) {
    r->err = e, r->syscall = "setns";
    return nullptr;
  }
  (*r->work)();
  return nullptr;
}

// nsFiles(nsPath, nsType, writes: [path, data][], reads: path[], optional?, asUid?, asGid?) -> (string | null)[] |
//   { errno, syscall, path? (the file that failed) }
// From inside the namespace nsPath names (/proc/PID/ns/KIND): write each file, then read each
// (optional: a file that cannot be opened or read, or reads empty, comes back as null); asUid and
// asGid: the effective ids the thread takes before (-1: its own).
Napi::Value NsFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  NsJob j;
  j.ns_path = info[0].As<Napi::String>().Utf8Value();
  j.ns_type = I32(info[1]);
  Napi::Array w = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < w.Length(); i++) {
    Napi::Array pair = w.Get(i).As<Napi::Array>();
    j.writes.emplace_back(pair.Get(0u).As<Napi::String>().Utf8Value(), pair.Get(1u).As<Napi::String>().Utf8Value());
  }
  Napi::Array rd = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < rd.Length(); i++) j.reads.push_back(rd.Get(i).As<Napi::String>().Utf8Value());
  j.optional = info.Length() > 4 && info[4].ToBoolean().Value();
  if (info.Length() > 6 && info[5].IsNumber() && info[6].IsNumber()) j.as_uid = I32(info[5]), j.as_gid = I32(info[6]);
  const char *failed = nullptr;
  int err = InNamespace(j.ns_path, j.ns_type, [&j] { NsWork(&j); }, &failed);
  if (failed) return SysErr(env, err, failed);
  if (j.syscall) {
    Napi::Object e = SysErr(env, j.err, j.syscall);
    if (!j.failed_path.empty()) e.Set("path", Napi::String::New(env, j.failed_path));
    return e;
  }
  Napi::Array out = Napi::Array::New(env, j.out.size());
  for (uint32_t i = 0; i < j.out.size(); i++) out.Set(i, j.missing[i] ? env.Null() : Napi::Value(Napi::String::New(env, j.out[i])));
  return out;
}

// nsRelative(nsPath, which) -> inode | { errno, syscall }: the inode of the user namespace that
// owns the namespace nsPath names (which 0: NS_GET_USERNS), or of the parent of the user or pid
// namespace it names (which 1: NS_GET_PARENT)
Napi::Value NsRelative(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  unsigned long req = I32(info[1]) == 1 ? 0xb702 /* NS_GET_PARENT */ : 0xb701 /* NS_GET_USERNS */;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysErr(env, errno, "open");
  int rel = ioctl(fd, req);
  int e = errno;
  close(fd);
  if (rel < 0) return SysErr(env, e, "ioctl");
  struct stat st;
  int r = fstat(rel, &st);
  e = errno;
  close(rel);
  if (r < 0) return SysErr(env, e, "fstat");
  return Num(env, (double)st.st_ino);
}

#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif

// killRelease(pids[], release) -> [{ kill, release }] (each 0 or an errno; release -1: not asked)
// SIGKILL to each process through a pidfd, then, when asked, process_mrelease(2) on each: the
// killed process's private memory is freed by this thread at once instead of by the dying task
// when the scheduler gets to it. A process whose mm is shared or already gone answers 0; a kernel
// without the call (before 5.15) ENOSYS, once: the rest are not asked.
Napi::Value KillRelease(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array pids = info[0].As<Napi::Array>();
  bool release = info[1].ToBoolean();
  uint32_t n = pids.Length();
  std::vector<int> fds(n, -1), killed(n, 0), released(n, -1);
  for (uint32_t i = 0; i < n; i++) {
    int pid = pids.Get(i).As<Napi::Number>().Int32Value();
    fds[i] = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fds[i] < 0) {
      killed[i] = errno;
      continue;
    }
    if (syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, nullptr, 0) < 0) killed[i] = errno;
  }
  for (uint32_t i = 0; i < n && release; i++) {
    if (fds[i] < 0 || killed[i]) continue;
    released[i] = syscall(SYS_process_mrelease, fds[i], 0) < 0 ? errno : 0;
    if (released[i] == ENOSYS) release = false;
  }
  Napi::Array out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    if (fds[i] >= 0) close(fds[i]);
    Napi::Object o = Napi::Object::New(env);
    o.Set("kill", Num(env, killed[i]));
    o.Set("release", Num(env, released[i]));
    out.Set(i, o);
  }
  return out;
}

// usernsCreate(uidMap, gidMap, alsoFlags) -> [userFd, ...fds of the other kinds asked] |
// { errno, syscall }: a new user namespace with its maps (the text of uid_map and gid_map, written
// from here), and, made with it and so owned by it, a new network namespace when alsoFlags has
// CLONE_NEWNET. A raw fork of this thread is born in them and only waits (a read on a pipe) while
// its namespaces are opened; it ends as the pipe closes, the descriptors (close-on-exec) hold them.
Napi::Value UsernsCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string maps[2] = { info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value() };
  int also = I32(info[2]) & CLONE_NEWNET;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return SysErr(env, errno, "pipe2");
  long pid = syscall(SYS_clone, CLONE_NEWUSER | also | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    // only raw syscalls in the child: it shares nothing of Node's state that is safe to use
    char b;
    syscall(SYS_close, p[1]);
    syscall(SYS_read, p[0], &b, 1);
    syscall(SYS_exit_group, 0);
  }
  int e = errno;
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    return SysErr(env, e, "clone");
  }
  const char *failed = nullptr;
  int fds[2] = { -1, -1 };
  const char *files[2] = { "uid_map", "gid_map" };
  for (int i = 0; i < 2 && !failed; i++) {
    std::string f = "/proc/" + std::to_string(pid) + "/" + files[i];
    int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) e = errno, failed = "open";
    else {
      if (write(fd, maps[i].data(), maps[i].size()) != (ssize_t)maps[i].size()) e = errno, failed = "write";
      close(fd);
    }
  }
  const char *kinds[2] = { "user", "net" };
  for (int i = 0; i < (also ? 2 : 1) && !failed; i++) {
    std::string f = "/proc/" + std::to_string(pid) + "/ns/" + kinds[i];
    fds[i] = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) e = errno, failed = "open";
  }
  close(p[1]);
  int st;
  while (waitpid((pid_t)pid, &st, __WALL) < 0 && errno == EINTR) {
  }
  if (failed) {
    for (int fd : fds)
      if (fd >= 0) close(fd);
    return SysErr(env, e, failed);
  }
  Napi::Array out = Napi::Array::New(env, also ? 2 : 1);
  out.Set(0u, Num(env, fds[0]));
  if (also) out.Set(1u, Num(env, fds[1]));
  return out;
}

}  // namespace

int crtools::sys::InNamespace(const std::string &nsPath, int nsType, const std::function<void()> &work, const char **failed) {
  NsRun run{&nsPath, nsType, &work};
  pthread_t th;
  int r = pthread_create(&th, nullptr, NsThread, &run);
  if (r != 0) {
    *failed = "pthread_create";
    return r;
  }
  pthread_join(th, nullptr);
  *failed = run.syscall;
  return run.err;
}

void crtools::sys::AddProcess(Napi::Object exports) {
  Export(exports, "kcmp", Kcmp);
  Export(exports, "kcmpEpollTfd", KcmpEpollTfd);
  Export(exports, "clockGettime", ClockGettime);
  Export(exports, "nsFiles", NsFiles);
  Export(exports, "nsRelative", NsRelative);
  Export(exports, "killRelease", KillRelease);
  Export(exports, "usernsCreate", UsernsCreate);
}
