// The restorer's launcher: trace every thread through its final rt_sigreturn, unmap the restorer
// region in each task from the blob's syscall instruction, put the registers back, detach.
#include "launcher.h"
#include "crtools-wait.h"

#include <errno.h>
#include <stdio.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_SYSCALL_INFO_ENTRY
#define PTRACE_SYSCALL_INFO_ENTRY 1
#define PTRACE_SYSCALL_INFO_EXIT 2
#endif

namespace {

using namespace crtools::launcher;
using crtools::SysErr;

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

// Would the kernel discard signal sig sent to task pid once it is not traced (sig_ignored):
// not blocked, and ignored (SIG_IGN, or SIG_DFL of a signal whose default is to ignore it)?
// Such a signal arriving while we hold the task must not be queued again: traced, the kernel
// keeps every signal, and the task would find it pending (say SIGCHLD of a child we stopped).
bool IgnoredBy(pid_t pid, int sig) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return false;
  unsigned long long blk = 0, ign = 0, cgt = 0;
  char line[256];
  while (fgets(line, sizeof(line), f)) {
    sscanf(line, "SigBlk: %llx", &blk);
    sscanf(line, "SigIgn: %llx", &ign);
    sscanf(line, "SigCgt: %llx", &cgt);
  }
  fclose(f);
  unsigned long long bit = 1ULL << (sig - 1);
  if (sig < 1 || sig > 64 || (blk & bit)) return false;
  if (ign & bit) return true;
  bool defaultIgnore = sig == SIGCHLD || sig == SIGCONT || sig == SIGWINCH || sig == SIGURG;
  return defaultIgnore && !(cgt & bit);
}

// Wait (with a deadline, never blocking for good) for a ptrace stop of tid. 1: stopped, 0: timeout, -1: gone.
int WaitStop(pid_t tid, int *status, long deadline) {
  pid_t r = crtools::WaitPidFor(tid, status, __WALL, (double)(deadline - NowMs()));
  if (r == tid) return WIFSTOPPED(*status) ? 1 : -1;
  return r == 0 ? 0 : -1;
}

// finish({ status, tasks: [{ tids, regionStart, regionSize, stopSigno, suspendSeccomp }],
//          syscallAddr, timeoutMs, parkedOff, lastOff })
// Let every thread run to the blob's last wait (park: the status word at parkedOff counts them
// in), stop them there, let them on (the word at lastOff) and trace each through its final
// rt_sigreturn by syscall stops, then run munmap of the restorer region in each task from the
// blob's syscall instruction (stopped at syscall exit, so the unmapped code is never returned
// to), put the task's registers back and detach. A task with a stopSigno
// (dumped stopped, or -s) has that signal queued while all its threads are still stopped, so
// each enters the group stop on its way out of the syscall stop, before any code of its own.
// A task with suspendSeccomp is seized with PTRACE_O_SUSPEND_SECCOMP: its threads install their
// seccomp filters (or strict mode) after "go", and nothing of them acts on the rest of the blob,
// the final rt_sigreturn or the injected munmap; they take effect with the detach.
// -> { ok: true } | { errno, syscall, pid }
Napi::Value Finish(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object a = info[0].As<Napi::Object>();
  Napi::ArrayBuffer status = a.Get("status").As<Napi::ArrayBuffer>();
  Napi::Array tasks = a.Get("tasks").As<Napi::Array>();
  uint64_t sysaddr = BigU64(a.Get("syscallAddr"));
  long deadline = NowMs() + a.Get("timeoutMs").As<Napi::Number>().Int64Value();
  std::vector<Th> th;
  std::vector<uint64_t> rs, rl;
  std::vector<int> stopsig;
  std::vector<bool> suspend;
  for (uint32_t i = 0; i < tasks.Length(); i++) {
    Napi::Object t = tasks.Get(i).As<Napi::Object>();
    Napi::Array tids = t.Get("tids").As<Napi::Array>();
    for (uint32_t k = 0; k < tids.Length(); k++) th.push_back({(pid_t)tids.Get(k).As<Napi::Number>().Int32Value(), (int)i, 0});
    rs.push_back(BigU64(t.Get("regionStart")));
    rl.push_back(BigU64(t.Get("regionSize")));
    stopsig.push_back(t.Get("stopSigno").As<Napi::Number>().Int32Value());
    suspend.push_back(t.Has("suspendSeccomp") && t.Get("suspendSeccomp").ToBoolean().Value());
  }
  auto fail = [&](int e, const char *sc, pid_t pid) {
    Napi::Object o = SysErr(env, e, sc);
    o.Set("pid", (double)pid);
    return o;
  };
  int st;
  struct { int e; const char *sc; pid_t pid; } why = {0, nullptr, 0};
  // every thread interrupted, then its stop awaited (a signal met on the way handed back, the
  // interrupt's stop still to come); false with `why` set on a failure
  auto stopAll = [&]() -> bool {
    for (auto &t : th)
      if (ptrace(PTRACE_INTERRUPT, t.tid, 0, 0)) return why = {errno, "ptrace", t.tid}, false;
    for (auto &t : th)
      for (;;) {
        int r = WaitStop(t.tid, &st, deadline);
        if (r <= 0) return why = {r == 0 ? ETIMEDOUT : ESRCH, "waitpid", t.tid}, false;
        if ((st >> 16) == PTRACE_EVENT_STOP) break;
        if (ptrace(PTRACE_CONT, t.tid, 0, (void *)(long)WSTOPSIG(st))) return why = {errno, "ptrace", t.tid}, false;
      }
    return true;
  };
  // a word of the status the blob waits on set to 1, its waiters woken
  auto openGate = [](uint32_t *w) {
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, w, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  };
  for (auto &t : th)
    if (ptrace(PTRACE_SEIZE, t.tid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | (suspend[t.task] ? PTRACE_O_SUSPEND_SECCOMP : 0))))
      return fail(errno, "ptrace", t.tid);
  if (!stopAll()) return fail(why.e, why.sc, why.pid);
  for (auto &t : th)
    if (ptrace(PTRACE_CONT, t.tid, 0, 0)) return fail(errno, "ptrace", t.tid);
  uint8_t *base = (uint8_t *)status.Data();
  uint32_t *parked = (uint32_t *)(base + a.Get("parkedOff").As<Napi::Number>().Uint32Value());
  openGate((uint32_t *)base);  // "go"

  // Untraced by syscall, every thread does the rest of its own state and parks before its
  // sigreturn (the blob's park(), one more on the counter each). A thread that stops on the
  // way (a signal, a group stop) is let go on; one that is gone failed in the blob.
  for (;;) {
    uint32_t n = __atomic_load_n(parked, __ATOMIC_SEQ_CST);
    if (n >= th.size()) break;
    if (NowMs() > deadline) return fail(ETIMEDOUT, "waitpid", th[0].tid);
    struct timespec ts = {0, 5 * 1000 * 1000};
    if (syscall(SYS_futex, parked, FUTEX_WAIT, n, &ts, nullptr, 0) == 0 || errno != ETIMEDOUT) continue;
    for (auto &t : th) {
      pid_t r = waitpid(t.tid, &st, WNOHANG | __WALL);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      if (r < 0 || !WIFSTOPPED(st)) return fail(ESRCH, "waitpid", t.tid);
      int sig = (st >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st);
      if (ptrace(PTRACE_CONT, t.tid, 0, (void *)(long)sig)) return fail(errno, "ptrace", t.tid);
    }
  }
  // all parked: each stopped where it waits, then followed by syscall stops through its
  // sigreturn, the word that lets them on set while none runs
  if (!stopAll()) return fail(why.e, why.sc, why.pid);
  openGate((uint32_t *)(base + a.Get("lastOff").As<Napi::Number>().Uint32Value()));
  for (auto &t : th)
    if (ptrace(PTRACE_SYSCALL, t.tid, 0, 0)) return fail(errno, "ptrace", t.tid);

  std::vector<int> left(rs.size(), 0);
  std::vector<pid_t> stopLeader(rs.size(), 0);
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
              if (!IgnoredBy(m, si.si_signo) && syscall(SYS_rt_tgsigqueueinfo, m, m, si.si_signo, &si) != 0) held = si.si_signo;
            if (held && IgnoredBy(m, held)) held = 0;
            int stop = stopsig[t.task];
            if (stop) {
              // queued for the whole thread group while every thread is still stopped here: a
              // thread detached later takes it (or the group stop it starts) on its way out of
              // the stop, before any instruction of its own. Given with the leader's detach, it
              // would only be sent once the leader runs, and another thread detached meanwhile
              // could run on for a moment.
              if (held) kill(m, held);
              if (kill(m, stop)) return fail(errno, "kill", m);
              stopLeader[t.task] = m;  // detached below, once every task is done
            }
            else
              for (auto &u : th)
                if (u.task == t.task) ptrace(PTRACE_DETACH, u.tid, 0, (void *)(long)(u.tid != m ? 0 : held));
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
      // asleep until the first thread not done has something to report (not taken: WNOWAIT;
      // the loop above takes it, and any other thread's that came meanwhile)
      for (auto &t : th) {
        if (t.state == 2) continue;
        crtools::WaitUntil([&](int extra) {
          siginfo_t si;
          si.si_pid = 0;
          return waitid(P_PID, t.tid, &si, WSTOPPED | WEXITED | __WALL | WNOWAIT | extra) < 0 ? -1 : si.si_pid;
        }, (double)(deadline - NowMs()));
        break;
      }
    }
  }
  // The tasks to stop are detached last, parents before children (the tasks come in that
  // order). A task entering its group stop sends SIGCHLD to its parent, which discards it when
  // the default disposition is in place, but only when the parent is not traced: one still
  // traced here would keep it queued and stop with it pending, a signal the tree never had.
  for (size_t i = 0; i < rs.size(); i++)
    if (stopLeader[i])
      for (auto &u : th)
        if (u.task == (int)i) ptrace(PTRACE_DETACH, u.tid, 0, 0);
  Napi::Object ok = Napi::Object::New(env);
  ok.Set("ok", true);
  return ok;
}

}  // namespace

void crtools::launcher::AddFinish(Napi::Object exports) {
  Export(exports, "finish", Finish);
}
