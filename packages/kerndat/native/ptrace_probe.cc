// @crtools/kerndat: what a tracer can do with a stopped child (seize, interrupt, signal
// state, seccomp, rseq, xstate, a hardware breakpoint).
#include "kerndat.h"

#include <csignal>
#include <cstddef>
#include <cstring>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

namespace crtools::kerndat {
namespace {

using crtools::SysErr;

// The breakpoint target; noinline so that its address is a real instruction.
extern "C" __attribute__((noinline)) void crtools_kerndat_bp_target(void) { __asm__ volatile("nop"); }

void install_allow_all_seccomp() {
  struct sock_filter filter[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {1, filter};
  syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

struct rseq_conf {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

// ptraceProbe({ seccomp, timeoutMs }) -> what a tracer can do with a stopped child (the errno
// of each request, 0 when it worked) | { errno, syscall } when the child cannot be forked
Napi::Value PtraceProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool with_seccomp = false;
  long timeout = 3000;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Has("seccomp")) with_seccomp = o.Get("seccomp").ToBoolean();
    if (o.Has("timeoutMs")) timeout = o.Get("timeoutMs").ToNumber().Int64Value();
  }
  pid_t pid = fork();
  if (pid < 0) return SysErr(env, errno, "fork");
  if (pid == 0) {
    if (with_seccomp) install_allow_all_seccomp();
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    crtools_kerndat_bp_target();
    child_exit(0);
  }
  Napi::Object out = Napi::Object::New(env);
  int64_t deadline = now_ms() + timeout;
  int st = 0;
  // 1. the child stops itself
  pid_t w = wait_deadline(pid, &st, WUNTRACED, deadline);
  if (w <= 0 || !WIFSTOPPED(st)) {
    out.Set("error", "child did not stop");
    kill_and_reap(pid);
    return out;
  }
  auto err_of = [](long r) { return r < 0 ? errno : 0; };
  // 2. seize + interrupt
  long r = ptrace((enum __ptrace_request)PTRACE_SEIZE, pid, 0, 0);
  out.Set("seize", err_of(r));
  if (r < 0) {
    kill_and_reap(pid);
    return out;
  }
  r = ptrace((enum __ptrace_request)PTRACE_INTERRUPT, pid, 0, 0);
  out.Set("interrupt", err_of(r));
  w = wait_deadline(pid, &st, __WALL, deadline);
  out.Set("interruptStop", w > 0 && WIFSTOPPED(st));
  if (w <= 0 || !WIFSTOPPED(st)) {
    kill_and_reap(pid);
    return out;
  }
  // 3. what a dumper needs
  struct {
    uint64_t off;
    uint32_t flags;
    int32_t nr;
  } psa = {0, 0, 1};
  siginfo_t si;
  r = ptrace((enum __ptrace_request)PTRACE_PEEKSIGINFO, pid, &psa, &si);
  out.Set("peeksiginfo", err_of(r));
  uint64_t mask = 0;
  r = ptrace((enum __ptrace_request)PTRACE_GETSIGMASK, pid, (void *)sizeof(mask), &mask);
  out.Set("getsigmask", err_of(r));
  r = ptrace((enum __ptrace_request)PTRACE_SETOPTIONS, pid, 0, (void *)(long)PTRACE_O_SUSPEND_SECCOMP);
  out.Set("suspendSeccomp", err_of(r));
  if (with_seccomp) {
    r = ptrace((enum __ptrace_request)PTRACE_SECCOMP_GET_FILTER, pid, 0, nullptr);
    out.Set("seccompGetFilter", err_of(r));
    out.Set("seccompFilterLen", r < 0 ? -1 : (double)r);
  }
  struct rseq_conf rc;
  memset(&rc, 0, sizeof(rc));
  r = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(rc), &rc);
  out.Set("getRseqConf", err_of(r));
  if (r >= 0) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("rseq_abi_pointer", Napi::BigInt::New(env, rc.rseq_abi_pointer));
    c.Set("rseq_abi_size", rc.rseq_abi_size);
    c.Set("signature", rc.signature);
    c.Set("flags", rc.flags);
    out.Set("rseqConf", c);
  }
  static uint8_t xbuf[64 * 1024];
  struct iovec iov = {xbuf, sizeof(xbuf)};
  r = ptrace((enum __ptrace_request)PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov);
  out.Set("getregsetXstate", err_of(r));
  out.Set("xstateSize", r < 0 ? 0 : (double)iov.iov_len);
  // 4. hardware breakpoint: DR0 = target, DR7 = local enable, execute, 1 byte
  long dr0 = offsetof(struct user, u_debugreg[0]);
  long dr7 = offsetof(struct user, u_debugreg[7]);
  r = ptrace(PTRACE_POKEUSER, pid, (void *)dr0, (void *)&crtools_kerndat_bp_target);
  if (r == 0) r = ptrace(PTRACE_POKEUSER, pid, (void *)dr7, (void *)1L);
  out.Set("pokeDebugreg", err_of(r));
  bool bp_hit = false;
  if (r == 0 && ptrace(PTRACE_CONT, pid, 0, 0) == 0) {
    for (;;) {
      w = wait_deadline(pid, &st, __WALL, deadline);
      if (w <= 0 || !WIFSTOPPED(st)) break;
      int sig = WSTOPSIG(st);
      if (sig == SIGTRAP && (st >> 16) == 0) {
        bp_hit = true;
        break;
      }
      // group-stop/event stops: keep it going without delivering signals
      if (ptrace(PTRACE_CONT, pid, 0, 0) != 0) break;
    }
  }
  out.Set("breakpointHit", bp_hit);
  kill_and_reap(pid);
  return out;
}

}  // namespace

void AddPtraceProbe(Napi::Object exports) {
  Export(exports, "ptraceProbe", PtraceProbe);
}

}  // namespace crtools::kerndat
