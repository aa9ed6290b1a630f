// The restorer's launcher: map the restorer blob and the plan block at the address TypeScript chose,
// start the root task with clone3(set_tid) straight into the blob, publish the go word, wait
// for tasks.
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <string>
#include <vector>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

extern "C" {
// glibc (2.35+) registers rseq for every thread; the blob must drop that registration
// before it unmaps Node, or the kernel's rseq update on return to user space faults.
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace {

using namespace crtools::launcher;
using crtools::SysErr;

// The child of a clone: a copy of Node with one thread. Leave C++ at once for the blob.
[[noreturn]] void EnterBlob(uint8_t *base, uint64_t plan_off, uint64_t stack_top, uint64_t rseq_ptr, uint64_t rseq_len) {
  uint64_t entry = (uint64_t)base;
  uint64_t planp = (uint64_t)(base + plan_off);
  // explicit registers: nothing may be clobbered before it is read
  __asm__ volatile(
      "mov %%rbx, %%rsp\n\t"
      "xor %%ebp, %%ebp\n\t"
      "jmp *%%rax\n\t" ::"b"(stack_top),
      "a"(entry), "D"(planp), "S"(0UL), "d"(rseq_ptr), "c"(rseq_len)
      : "memory");
  __builtin_unreachable();
}

// A namespace that exists already the root is born in (the tree's network namespace, --join-ns).
// Network, UTS and IPC ones this thread joins across the clone3; mount, time and user ones only a
// single-threaded process sharing no fs_struct may join: the helper below does. For a user
// namespace, the ids the helper takes inside it (-1: its own).
struct Join {
  int fd;
  int type;
  std::string name;
  int own;
  long uid;
  long gid;
};

bool JoinedByHelper(int type) { return type == CLONE_NEWNS || type == CLONE_NEWTIME || type == CLONE_NEWUSER; }

// clone3(ca) from a helper (a raw fork of this thread: one thread, no atfork handlers) that first
// joins the mount, time and user namespaces given (in that order, the user one last), and/or makes
// a new time namespace for its children and writes its offsets, then takes the ids given inside
// the user namespace. Returns the root's pid (0 in the root itself) or -1 with errno set and
// *failed naming the syscall.
long HelperClone(struct clone_args *ca, const std::string &offsets, const std::vector<Join> &joins, const char **failed) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    *failed = "pipe2";
    return -1;
  }
  struct clone_args root = *ca;
  root.flags |= CLONE_PARENT;
  root.exit_signal = 0;  // the helper's (SIGCHLD) with CLONE_PARENT
  long helper = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (helper == 0) {
    // the helper: only raw syscalls from here; reports { pid or -errno, step } on the pipe
    long out[2] = {0, 0};
    const Join *user = nullptr;
    for (const Join &j : joins) {
      if (out[1] || !JoinedByHelper(j.type)) continue;
      if (syscall(SYS_setns, j.fd, j.type) < 0) out[0] = -errno, out[1] = 5;
      else if (j.type == CLONE_NEWUSER) user = &j;
    }
    if (!out[1] && !offsets.empty()) {
      if (syscall(SYS_unshare, CLONE_NEWTIME) < 0) {
        out[0] = -errno, out[1] = 1;
      } else {
        int fd = (int)syscall(SYS_open, "/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0) out[0] = -errno, out[1] = 2;
        else {
          if (syscall(SYS_write, fd, offsets.data(), offsets.size()) != (long)offsets.size()) out[0] = -errno, out[1] = 3;
          syscall(SYS_close, fd);
        }
      }
    }
    // the ids inside a joined user namespace last: its time namespace's offsets are written
    // through /proc/self, which a change of ids makes root's (not dumpable)
    if (!out[1] && user && user->gid >= 0 && syscall(SYS_setresgid, user->gid, user->gid, user->gid) < 0) out[0] = -errno, out[1] = 6;
    if (!out[1] && user && user->uid >= 0 && syscall(SYS_setresuid, user->uid, user->uid, user->uid) < 0) out[0] = -errno, out[1] = 7;
    if (!out[1]) {
      long r = syscall(SYS_clone3, &root, sizeof(root));
      if (r == 0) return 0;
      out[0] = r < 0 ? -errno : r, out[1] = r < 0 ? 4 : 0;
    }
    syscall(SYS_write, p[1], out, sizeof(out));
    syscall(SYS_exit_group, 0);
  }
  int e = errno;
  close(p[1]);
  if (helper < 0) {
    close(p[0]);
    errno = e;
    *failed = "clone";
    return -1;
  }
  long in[2] = {-EIO, 4};
  ssize_t n;
  do n = read(p[0], in, sizeof(in));
  while (n < 0 && errno == EINTR);
  close(p[0]);
  int st;
  while (waitpid((pid_t)helper, &st, __WALL) < 0 && errno == EINTR) {
  }
  if (n != (ssize_t)sizeof(in)) in[0] = -EIO, in[1] = 4;
  if (in[0] < 0) {
    static const char *steps[] = {"", "unshare", "open", "write", "clone3", "setns", "setresgid", "setresuid"};
    *failed = steps[in[1] >= 1 && in[1] <= 7 ? in[1] : 4];
    errno = (int)-in[0];
    return -1;
  }
  return in[0];
}

// The plan copied into the region a piece at a time, each piece's whole pages of the source given
// back to the kernel once copied (MADV_DONTNEED: they read as zeros after): a plan of 60,000 areas
// is ~10 MB, which would otherwise be resident twice at the launch, the restore's peak.
static void CopyReleasing(uint8_t *dst, uint8_t *src, size_t len) {
  const size_t piece = 1 << 20;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t released = ((uintptr_t)src + page - 1) & ~(page - 1);  // the first whole page of src
  for (size_t done = 0; done < len;) {
    size_t n = len - done < piece ? len - done : piece;
    memcpy(dst + done, src + done, n);
    done += n;
    uintptr_t upto = ((uintptr_t)src + done) & ~(page - 1);
    if (upto > released) {
      madvise((void *)released, upto - released, MADV_DONTNEED);
      released = upto;
    }
  }
}

// launch({ blob, plan, regionStart, regionSize, codeSize, planOff, statusOff, statusSize,
//          stackTop, rootPid, cloneParent, cloneFlags, joinNs?, timensOffsets? }) -> { pid, status: ArrayBuffer } | { errno, syscall }
// plan: consumed once the region is mapped (its whole pages read as zeros after, CopyReleasing),
// whether the launch succeeds or not; before that (an mmap error) it is left as it was
// joinNs: [{ fd, type, name, uid?, gid? }] namespaces that exist already the root is born in (the
// tree's network namespace, --join-ns): this thread joins the network, UTS and IPC ones for the
// clone3 only; mount, time and user ones a helper joins (below)
// timensOffsets: the root is born in a new time namespace with these offsets (the text written to
// timens_offsets): a single-threaded helper forked from this thread makes the namespace (unshare
// CLONE_NEWTIME, offsets written before any task is in it) and starts the root with CLONE_PARENT,
// so the root is this process's child as without it (not with cloneParent: checked by TypeScript)
Napi::Value Launch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object a = info[0].As<Napi::Object>();
  Napi::Buffer<uint8_t> blob = a.Get("blob").As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> plan = a.Get("plan").As<Napi::Buffer<uint8_t>>();
  uint64_t start = BigU64(a.Get("regionStart"));
  uint64_t size = BigU64(a.Get("regionSize"));
  uint64_t code_size = BigU64(a.Get("codeSize"));
  uint64_t plan_off = BigU64(a.Get("planOff"));
  uint64_t status_off = BigU64(a.Get("statusOff"));
  uint64_t status_size = BigU64(a.Get("statusSize"));
  uint64_t stack_top = BigU64(a.Get("stackTop"));
  pid_t root = a.Get("rootPid").As<Napi::Number>().Int32Value();
  bool clone_parent = a.Get("cloneParent").As<Napi::Boolean>().Value();
  // the namespaces the root is born in (CLONE_NEW*, checked by TypeScript)
  uint64_t clone_ns = (uint64_t)a.Get("cloneFlags").As<Napi::Number>().Int64Value();
  // the namespaces the root is born in that exist already (the tree's network namespace, --join-ns):
  // this thread joins each across the clone3
  std::vector<Join> joins;
  bool by_helper = false;
  if (a.Has("joinNs") && a.Get("joinNs").IsArray()) {
    Napi::Array arr = a.Get("joinNs").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object j = arr.Get(i).As<Napi::Object>();
      auto id = [&j](const char *k) { return j.Has(k) && j.Get(k).IsNumber() ? (long)j.Get(k).As<Napi::Number>().Int64Value() : -1L; };
      joins.push_back({ j.Get("fd").As<Napi::Number>().Int32Value(), j.Get("type").As<Napi::Number>().Int32Value(), j.Get("name").As<Napi::String>().Utf8Value(), -1, id("uid"), id("gid") });
      by_helper = by_helper || JoinedByHelper(joins.back().type);
    }
  }
  std::string timens = a.Has("timensOffsets") && a.Get("timensOffsets").IsString() ? a.Get("timensOffsets").As<Napi::String>().Utf8Value() : std::string();

  void *r = mmap((void *)start, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return SysErr(env, errno, "mmap");
  if ((uint64_t)r != start) {
    munmap(r, size);
    return SysErr(env, EEXIST, "mmap");
  }
  uint8_t *base = (uint8_t *)r;
  void *st = mmap(base + status_off, status_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (st == MAP_FAILED) {
    int e = errno;
    munmap(base, size);
    return SysErr(env, e, "mmap");
  }
  memcpy(base, blob.Data(), blob.Length());
  CopyReleasing(base + plan_off, plan.Data(), plan.Length());
  if (mprotect(base, code_size, PROT_READ | PROT_EXEC)) {
    int e = errno;
    munmap(base, size);
    return SysErr(env, e, "mprotect");
  }

  // The child must not run any of Node's signal handlers: block everything across clone3;
  // the blob keeps everything blocked until the final rt_sigreturn installs the recorded mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  struct clone_args ca;
  memset(&ca, 0, sizeof(ca));
  pid_t tid = root;
  ca.flags = (clone_parent ? CLONE_PARENT : 0) | clone_ns;
  ca.exit_signal = clone_parent ? 0 : SIGCHLD;  // clone3 takes the parent's exit signal with CLONE_PARENT
  ca.set_tid = (uint64_t)(uintptr_t)&tid;
  ca.set_tid_size = 1;
  uint64_t rseq_ptr = 0, rseq_len = 0;
  if (&__rseq_offset && &__rseq_size && __rseq_size) {
    rseq_ptr = (uint64_t)((char *)__builtin_thread_pointer() + __rseq_offset);
    rseq_len = __rseq_size;
  }
  // back in our own namespaces, in reverse (a failure here would leave Node's main thread in the tree's)
  auto leave = [&joins]() {
    for (auto it = joins.rbegin(); it != joins.rend(); ++it) {
      if (it->own < 0) continue;
      if (setns(it->own, it->type) < 0) abort();
      close(it->own);
      it->own = -1;
    }
  };
  for (auto &j : joins) {
    if (JoinedByHelper(j.type)) continue;
    std::string self = "/proc/thread-self/ns/" + j.name;
    j.own = open(self.c_str(), O_RDONLY | O_CLOEXEC);
    if (j.own < 0 || setns(j.fd, j.type) < 0) {
      int e = errno;
      bool opened = j.own >= 0;
      if (opened) close(j.own);
      j.own = -1;
      leave();
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      munmap(base, size);
      return SysErr(env, e, opened ? "setns" : "open");
    }
  }
  long pid;
  const char *failed = "clone3";
  if (timens.empty() && !by_helper) {
    pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid == 0) EnterBlob(base, plan_off, stack_top, rseq_ptr, rseq_len);
  } else {
    pid = HelperClone(&ca, timens, joins, &failed);
    if (pid == 0) EnterBlob(base, plan_off, stack_top, rseq_ptr, rseq_len);
  }
  int e = errno;
  leave();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // The launcher keeps only the shared status area.
  munmap(base, status_off);
  if (status_off + status_size < size) munmap(base + status_off + status_size, size - status_off - status_size);
  if (pid < 0) {
    munmap(base + status_off, status_size);
    return SysErr(env, e, failed);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", (double)pid);
  out.Set("status", Napi::ArrayBuffer::New(env, base + status_off, status_size));
  return out;
}

// go(status, value, offset = 0): publish the word at offset of the status area (the go word, or
// another gate) and wake every task waiting on it (shared futex)
Napi::Value Go(const Napi::CallbackInfo &info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uint32_t v = info[1].As<Napi::Number>().Uint32Value();
  uint32_t off = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  uint32_t *w = (uint32_t *)((char *)ab.Data() + off);
  __atomic_store_n(w, v, __ATOMIC_SEQ_CST);
  long n = syscall(SYS_futex, w, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  return Napi::Number::New(info.Env(), (double)n);
}

// release(status): unmap the launcher's view of the status area
Napi::Value Release(const Napi::CallbackInfo &info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  munmap(ab.Data(), ab.ByteLength());
  return info.Env().Undefined();
}

// waitpid(pid, nohang) -> { pid, exited, code, signaled, signal } | { errno, syscall }
Napi::Value WaitPid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  bool nohang = info[1].As<Napi::Boolean>().Value();
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, (nohang ? WNOHANG : 0) | __WALL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return SysErr(env, errno, "waitpid");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", (double)r);
  if (r > 0) {
    o.Set("exited", WIFEXITED(status));
    o.Set("code", WIFEXITED(status) ? WEXITSTATUS(status) : 0);
    o.Set("signaled", WIFSIGNALED(status));
    o.Set("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  return o;
}

}  // namespace

void crtools::launcher::AddLaunch(Napi::Object exports) {
  Export(exports, "launch", Launch);
  Export(exports, "go", Go);
  Export(exports, "release", Release);
  Export(exports, "waitpid", WaitPid);
}
