// Thin native launcher: maps the restorer blob and the plan block at an address chosen by
// TypeScript, starts the root task with clone3(set_tid) and hands it straight to the blob.
// Everything else (choosing the hole, building the plan, deciding what errors mean) is in TS.
#include <napi.h>

#include "crtools-napi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string>
#include <utility>
#include <linux/futex.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <time.h>
#include <vector>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

using crtools::SysErr;

uint64_t BigU64(const Napi::Value &v) {
  bool lossless;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

// launch({ blob, plan, regionStart, regionSize, codeSize, planOff, statusOff, statusSize,
//          stackTop, rootPid, cloneParent }) -> { pid, status: ArrayBuffer } | { errno, syscall }
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
  memcpy(base + plan_off, plan.Data(), plan.Length());
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
  ca.flags = clone_parent ? CLONE_PARENT : 0;
  ca.exit_signal = clone_parent ? 0 : SIGCHLD;  // clone3 takes the parent's exit signal with CLONE_PARENT
  ca.set_tid = (uint64_t)(uintptr_t)&tid;
  ca.set_tid_size = 1;
  uint64_t rseq_ptr = 0, rseq_len = 0;
  if (&__rseq_offset && &__rseq_size && __rseq_size) {
    rseq_ptr = (uint64_t)((char *)__builtin_thread_pointer() + __rseq_offset);
    rseq_len = __rseq_size;
  }
  long pid = syscall(SYS_clone3, &ca, sizeof(ca));
  if (pid == 0) {
    // Child: a copy of Node with one thread. Leave C++ at once for the blob.
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
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // The launcher keeps only the shared status area.
  munmap(base, status_off);
  if (status_off + status_size < size) munmap(base + status_off + status_size, size - status_off - status_size);
  if (pid < 0) {
    munmap(base + status_off, status_size);
    return SysErr(env, e, "clone3");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", (double)pid);
  out.Set("status", Napi::ArrayBuffer::New(env, base + status_off, status_size));
  return out;
}

// go(status, value): publish the go word and wake every waiting task (shared futex)
Napi::Value Go(const Napi::CallbackInfo &info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uint32_t v = info[1].As<Napi::Number>().Uint32Value();
  uint32_t *w = (uint32_t *)ab.Data();
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

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_SYSCALL_INFO_ENTRY
#define PTRACE_SYSCALL_INFO_ENTRY 1
#define PTRACE_SYSCALL_INFO_EXIT 2
#endif

struct SysInfo {
  uint8_t op;
  uint8_t pad[3];
  uint32_t arch;
  uint64_t ip, sp;
  uint64_t nr_or_rval;
  uint64_t args[6];
};

struct Th {
  pid_t tid;
  int task;
  int state;  // 0 running in the blob, 1 inside rt_sigreturn, 2 stopped in the task's own state
};

long NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Wait (with a deadline, never blocking for good) for a ptrace stop of tid. 1: stopped, 0: timeout, -1: gone.
int WaitStop(pid_t tid, int *status, long deadline) {
  for (;;) {
    pid_t r = waitpid(tid, status, WNOHANG | __WALL);
    if (r == tid) return WIFSTOPPED(*status) ? 1 : -1;
    if (r < 0 && errno != EINTR) return -1;
    if (NowMs() > deadline) return 0;
    struct timespec ts = {0, 200 * 1000};
    nanosleep(&ts, nullptr);
  }
}

// finish({ status, tasks: [{ tids, regionStart, regionSize }], syscallAddr, leaveStopped, timeoutMs })
// Trace every thread through its final rt_sigreturn, then run munmap of the restorer region in
// each task from the blob's syscall instruction (stopped at syscall exit, so the unmapped code
// is never returned to), put the task's registers back and detach (with SIGSTOP for -s).
// -> { ok: true } | { errno, syscall, pid }
Napi::Value Finish(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object a = info[0].As<Napi::Object>();
  Napi::ArrayBuffer status = a.Get("status").As<Napi::ArrayBuffer>();
  Napi::Array tasks = a.Get("tasks").As<Napi::Array>();
  uint64_t sysaddr = BigU64(a.Get("syscallAddr"));
  bool stop = a.Get("leaveStopped").As<Napi::Boolean>().Value();
  long deadline = NowMs() + a.Get("timeoutMs").As<Napi::Number>().Int64Value();
  std::vector<Th> th;
  std::vector<uint64_t> rs, rl;
  for (uint32_t i = 0; i < tasks.Length(); i++) {
    Napi::Object t = tasks.Get(i).As<Napi::Object>();
    Napi::Array tids = t.Get("tids").As<Napi::Array>();
    for (uint32_t k = 0; k < tids.Length(); k++) th.push_back({(pid_t)tids.Get(k).As<Napi::Number>().Int32Value(), (int)i, 0});
    rs.push_back(BigU64(t.Get("regionStart")));
    rl.push_back(BigU64(t.Get("regionSize")));
  }
  auto fail = [&](int e, const char *sc, pid_t pid) {
    Napi::Object o = SysErr(env, e, sc);
    o.Set("pid", (double)pid);
    return o;
  };
  int st;
  for (auto &t : th)
    if (ptrace(PTRACE_SEIZE, t.tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD)) return fail(errno, "ptrace", t.tid);
  for (auto &t : th)
    if (ptrace(PTRACE_INTERRUPT, t.tid, 0, 0)) return fail(errno, "ptrace", t.tid);
  for (auto &t : th) {
    int r = WaitStop(t.tid, &st, deadline);
    if (r <= 0) return fail(r == 0 ? ETIMEDOUT : ESRCH, "waitpid", t.tid);
    if (ptrace(PTRACE_SYSCALL, t.tid, 0, 0)) return fail(errno, "ptrace", t.tid);
  }
  uint32_t *go = (uint32_t *)status.Data();
  __atomic_store_n(go, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, go, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);

  std::vector<int> left(rs.size(), 0);
  for (auto &t : th) left[t.task]++;
  size_t done_tasks = 0;
  while (done_tasks < rs.size()) {
    bool progress = false;
    for (auto &t : th) {
      if (t.state == 2) continue;
      pid_t r = waitpid(t.tid, &st, WNOHANG | __WALL);
      if (r == 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || !WIFSTOPPED(st)) return fail(ESRCH, "waitpid", t.tid);
      progress = true;
      int sig = WSTOPSIG(st);
      int inject = 0;
      if (sig == (SIGTRAP | 0x80)) {
        SysInfo si;
        memset(&si, 0, sizeof(si));
        if (ptrace((enum __ptrace_request)PTRACE_GET_SYSCALL_INFO, t.tid, (void *)sizeof(si), &si) < 0) return fail(errno, "ptrace", t.tid);
        if (si.op == PTRACE_SYSCALL_INFO_ENTRY && si.nr_or_rval == SYS_rt_sigreturn) t.state = 1;
        else if (si.op == PTRACE_SYSCALL_INFO_EXIT && t.state == 1) {
          t.state = 2;
          if (--left[t.task] == 0) {
            // every thread of this task runs its own state: drop the region from the main thread
            pid_t m = 0;
            for (auto &u : th)
              if (u.task == t.task) { m = u.tid; break; }
            struct user_regs_struct saved, regs;
            if (ptrace(PTRACE_GETREGS, m, 0, &saved)) return fail(errno, "ptrace", m);
            regs = saved;
            regs.rip = sysaddr - rs[0] + rs[t.task];
            regs.rax = SYS_munmap;
            regs.rdi = rs[t.task];
            regs.rsi = rl[t.task];
            if (ptrace(PTRACE_SETREGS, m, 0, &regs)) return fail(errno, "ptrace", m);
            // munmap entry, then exit. A signal arriving now (say SIGCHLD from a child that
            // just resumed) must not run on the injected registers: hold it back and hand it
            // over when detaching, with its siginfo (a timer tick keeps SI_TIMER, its id and value).
            int held = 0;
            std::vector<siginfo_t> heldInfo;
            for (int step = 0; step < 2;) {
              if (ptrace(PTRACE_SYSCALL, m, 0, 0)) return fail(errno, "ptrace", m);
              int w = WaitStop(m, &st, deadline);
              if (w <= 0) return fail(w == 0 ? ETIMEDOUT : ESRCH, "waitpid", m);
              if (WSTOPSIG(st) == (SIGTRAP | 0x80)) step++;
              else if ((st >> 16) == 0) {
                siginfo_t si;
                if (ptrace(PTRACE_GETSIGINFO, m, 0, &si) == 0) heldInfo.push_back(si);
                else held = WSTOPSIG(st);
              }
            }
            if (ptrace(PTRACE_GETREGS, m, 0, &regs)) return fail(errno, "ptrace", m);
            if ((long long)regs.rax < 0) return fail((int)-(long long)regs.rax, "munmap", m);
            if (ptrace(PTRACE_SETREGS, m, 0, &saved)) return fail(errno, "ptrace", m);
            // queued again as they came; the kernel refuses to forge kernel-sent codes
            // (si_code >= 0) for another process: those go with the detach as before
            for (auto &si : heldInfo)
              if (syscall(SYS_rt_tgsigqueueinfo, m, m, si.si_signo, &si) != 0) held = si.si_signo;
            if (held && stop) kill(m, held);  // queued again; SIGSTOP goes with the detach
            for (auto &u : th)
              if (u.task == t.task)
                ptrace(PTRACE_DETACH, u.tid, 0, (void *)(long)(u.tid != m ? 0 : stop ? SIGSTOP : held));
            done_tasks++;
          }
          continue;
        }
      } else if ((st >> 16) == PTRACE_EVENT_STOP) {
        inject = 0;
      } else {
        inject = sig;  // a signal arriving meanwhile: hand it back
      }
      if (ptrace(PTRACE_SYSCALL, t.tid, 0, (void *)(long)inject)) return fail(errno, "ptrace", t.tid);
    }
    if (!progress) {
      if (NowMs() > deadline) {
        for (auto &t : th) if (t.state != 2) return fail(ETIMEDOUT, "waitpid", t.tid);
      }
      struct timespec ts = {0, 100 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
  Napi::Object ok = Napi::Object::New(env);
  ok.Set("ok", true);
  return ok;
}

// xfeatures(): XCR0, the xsave components this CPU and kernel have enabled for user space
Napi::Value Xfeatures(const Napi::CallbackInfo &info) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return Napi::BigInt::New(info.Env(), ((uint64_t)hi << 32) | lo);
}

// sharedAnon(size) -> address (bigint) | { errno, syscall }: a MAP_SHARED|MAP_ANONYMOUS area,
// whose shmem object the restored tasks map through /proc/<this pid>/map_files
Napi::Value SharedAnon(const Napi::CallbackInfo &info) {
  uint64_t size = BigU64(info[0]);
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return SysErr(info.Env(), errno, "mmap");
  return Napi::BigInt::New(info.Env(), (uint64_t)(uintptr_t)p);
}

// unmap(address, size) -> 0 | { errno, syscall }: drop an area sharedAnon made
Napi::Value Unmap(const Napi::CallbackInfo &info) {
  uint64_t addr = BigU64(info[0]), size = BigU64(info[1]);
  if (munmap((void *)(uintptr_t)addr, size) != 0) return SysErr(info.Env(), errno, "munmap");
  return Napi::Number::New(info.Env(), 0);
}

// ---- the launcher's share of the page copying (see restore_pages in the blob) ----
// A task that registered its big anonymous page runs with a userfaultfd publishes the fd number
// and the count of PAGE_CHUNK pieces in its status record; whoever claims a piece (an atomic add
// on `claimed`) copies it with UFFDIO_COPY and counts it in `copied`. The launcher takes a copy
// of that userfaultfd with pidfd_getfd and claims pieces like the task does, so two CPUs copy.

struct HelperRun {
  uint64_t vaddr, len, off;
  std::string path;
};

struct HelperTask {
  std::vector<HelperRun> runs;
  bool skip = false;  // pidfd_getfd refused: the task copies everything itself
};

struct Helper {
  uint8_t *status;
  uint64_t tasksOff, recordSize, pubOff, chunk;
  uint64_t fState, fPid, fUffd, fChunks, fClaimed, fCopied, fErr;
  uint64_t stFailed;
  std::vector<HelperTask> tasks;
  volatile uint64_t *field(size_t task, uint64_t off) { return (volatile uint64_t *)(status + tasksOff + task * recordSize + off); }
};

// copy piece k of task t's runs; 0 or an errno
int CopyPiece(Helper *h, HelperTask &t, uint64_t k, int uffd, std::vector<int> &fds) {
  for (size_t i = 0; i < t.runs.size(); i++) {
    HelperRun &r = t.runs[i];
    uint64_t n = (r.len + h->chunk - 1) / h->chunk;
    if (k >= n) {
      k -= n;
      continue;
    }
    uint64_t at = k * h->chunk, len = r.len - at < h->chunk ? r.len - at : h->chunk;
    if (fds[i] < 0) {
      for (size_t j = 0; j < i && fds[i] < 0; j++)
        if (fds[j] >= 0 && t.runs[j].path == r.path) fds[i] = dup(fds[j]);
      if (fds[i] < 0) fds[i] = open(r.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0) return errno;
    }
    void *src = mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fds[i], (off_t)(r.off + at));
    if (src == MAP_FAILED) return errno;
    int err = 0, again = 0;
    for (uint64_t done = 0; done < len;) {
      struct uffdio_copy cp;
      cp.dst = r.vaddr + at + done;
      cp.src = (uint64_t)(uintptr_t)src + done;
      cp.len = len - done;
      cp.mode = 0;
      cp.copy = 0;
      if (ioctl(uffd, UFFDIO_COPY, &cp) == 0) break;
      if (cp.copy > 0) {
        done += (uint64_t)cp.copy;
        continue;
      }
      if (errno != EAGAIN || ++again > 1000) {
        err = errno;
        break;
      }
    }
    munmap(src, len);
    return err;
  }
  return EINVAL;
}

void FreeHelper(Napi::Env, Helper *h) { delete h; }

// pageHelper(status, { tasksOff, recordSize, pubOff, chunk, fields: { state, pid, uffd, chunks,
//   claimed, copied, help_err }, failed, tasks: [[{ vaddr, len, off, path }]] }) -> External
Napi::Value PageHelper(const Napi::CallbackInfo &info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  Napi::Object a = info[1].As<Napi::Object>();
  Napi::Object f = a.Get("fields").As<Napi::Object>();
  auto num = [](Napi::Object o, const char *k) { return (uint64_t)o.Get(k).As<Napi::Number>().Int64Value(); };
  Helper *h = new Helper();
  h->status = (uint8_t *)ab.Data();
  h->tasksOff = num(a, "tasksOff");
  h->recordSize = num(a, "recordSize");
  h->pubOff = num(a, "pubOff");
  h->chunk = num(a, "chunk");
  h->stFailed = num(a, "failed");
  const std::pair<uint64_t Helper::*, const char *> fields[] = {
      {&Helper::fState, "state"}, {&Helper::fPid, "pid"}, {&Helper::fUffd, "uffd"}, {&Helper::fChunks, "chunks"},
      {&Helper::fClaimed, "claimed"}, {&Helper::fCopied, "copied"}, {&Helper::fErr, "help_err"}};
  for (auto &fd : fields) h->*fd.first = num(f, fd.second);
  Napi::Array tasks = a.Get("tasks").As<Napi::Array>();
  for (uint32_t i = 0; i < tasks.Length(); i++) {
    HelperTask t;
    Napi::Array runs = tasks.Get(i).As<Napi::Array>();
    for (uint32_t k = 0; k < runs.Length(); k++) {
      Napi::Object r = runs.Get(k).As<Napi::Object>();
      t.runs.push_back({BigU64(r.Get("vaddr")), BigU64(r.Get("len")), BigU64(r.Get("off")), r.Get("path").As<Napi::String>().Utf8Value()});
    }
    h->tasks.push_back(std::move(t));
  }
  return Napi::External<Helper>::New(info.Env(), h, FreeHelper);
}

// assist(helper, waitMs) -> pieces copied: take pieces of every task that published its
// userfaultfd; when there is none to take, wait up to waitMs for a task to publish.
Napi::Value Assist(const Napi::CallbackInfo &info) {
  Helper *h = info[0].As<Napi::External<Helper>>().Data();
  long waitMs = info[1].As<Napi::Number>().Int64Value();
  volatile uint32_t *pub = (volatile uint32_t *)(h->status + h->pubOff);
  double copied = 0;
  for (;;) {
    uint32_t seen = __atomic_load_n(pub, __ATOMIC_SEQ_CST);
    bool worked = false;
    for (size_t i = 0; i < h->tasks.size(); i++) {
      HelperTask &t = h->tasks[i];
      if (t.skip || t.runs.empty()) continue;
      uint64_t chunks = __atomic_load_n(h->field(i, h->fChunks), __ATOMIC_SEQ_CST);
      if (!chunks || __atomic_load_n(h->field(i, h->fClaimed), __ATOMIC_SEQ_CST) >= chunks) continue;
      if (__atomic_load_n(h->field(i, h->fState), __ATOMIC_SEQ_CST) == h->stFailed) continue;
      // the fd number stays the task's userfaultfd until every piece is claimed and copied:
      // a piece claimed below proves it was still that file when we took our copy
      int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)*h->field(i, h->fPid), 0);
      int uffd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)*h->field(i, h->fUffd), 0);
      if (pidfd >= 0) close(pidfd);
      if (uffd < 0) {
        t.skip = true;
        continue;
      }
      worked = true;
      std::vector<int> fds(t.runs.size(), -1);
      uint64_t k;
      while ((k = __atomic_fetch_add(h->field(i, h->fClaimed), 1, __ATOMIC_SEQ_CST)) < chunks) {
        int err = CopyPiece(h, t, k, uffd, fds);
        if (err) {
          uint64_t zero = 0;
          __atomic_compare_exchange_n(h->field(i, h->fErr), &zero, (uint64_t)err, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
        __atomic_add_fetch(h->field(i, h->fCopied), 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, h->field(i, h->fCopied), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
        copied++;
      }
      for (int fd : fds)
        if (fd >= 0) close(fd);
      close(uffd);
    }
    if (worked) continue;
    if (copied > 0 || waitMs <= 0) break;
    struct timespec ts = {waitMs / 1000, (waitMs % 1000) * 1000000};
    syscall(SYS_futex, pub, FUTEX_WAIT, seen, &ts, nullptr, 0);
    waitMs = 0;
  }
  return Napi::Number::New(info.Env(), copied);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("pageHelper", Napi::Function::New(env, PageHelper));
  exports.Set("assist", Napi::Function::New(env, Assist));
  exports.Set("sharedAnon", Napi::Function::New(env, SharedAnon));
  exports.Set("unmap", Napi::Function::New(env, Unmap));
  exports.Set("xfeatures", Napi::Function::New(env, Xfeatures));
  exports.Set("finish", Napi::Function::New(env, Finish));
  exports.Set("launch", Napi::Function::New(env, Launch));
  exports.Set("go", Napi::Function::New(env, Go));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("waitpid", Napi::Function::New(env, WaitPid));
  return exports;
}

}  // namespace

NODE_API_MODULE(restorer, Init)
