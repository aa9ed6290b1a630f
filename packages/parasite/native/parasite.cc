// Thin native layer of @crtools/parasite.
//
// Only what Node cannot do: ptrace requests, waitpid with a timeout,
// process_vm_readv/writev into caller-provided Buffers, mapping a shared fd,
// and (for tests) starting a process that is not a child of Node.
// Every function is synchronous and must be called from the JS main thread:
// a tracee belongs to the thread that seized it.
// Failures come back as { errno, syscall } objects (crtools::SysErr); TypeScript makes the errors.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <napi.h>

#include "crtools-napi.h"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <elf.h>
#include <fcntl.h>
#include <linux/ptrace.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using crtools::SysErr;

// ptrace(2) as the kernel has it (PEEKDATA stores the word at *data); -1 with errno on failure
long sys_ptrace(long req, long pid, uint64_t addr, uint64_t data) { return syscall(SYS_ptrace, req, pid, addr, data); }

uint64_t u64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return (uint64_t)v.As<Napi::Number>().Int64Value();
}

int i32(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

Napi::Value num(Napi::Env env, double d) { return Napi::Number::New(env, d); }

// r from a call that returns -1 with errno on failure: r itself, or { errno, syscall }
Napi::Value Result(Napi::Env env, long r, const char *syscall) {
  if (r < 0) return SysErr(env, errno, syscall);
  return num(env, (double)r);
}

// seize(pid, options) -> 0 | { errno, syscall }
Napi::Value Seize(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_SEIZE, i32(info[0]), 0, u64(info[1])), "ptrace");
}

Napi::Value Interrupt(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_INTERRUPT, i32(info[0]), 0, 0), "ptrace");
}

// detach(pid, sig) -> 0 | { errno, syscall }
Napi::Value Detach(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_DETACH, i32(info[0]), 0, (uint64_t)i32(info[1])), "ptrace");
}

// cont(pid, sig) -> 0 | { errno, syscall }
Napi::Value Cont(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_CONT, i32(info[0]), 0, (uint64_t)i32(info[1])), "ptrace");
}

// listen(pid) -> 0 | { errno, syscall } (leave a group-stopped tracee stopped but notifiable)
Napi::Value Listen(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_LISTEN, i32(info[0]), 0, 0), "ptrace");
}

// wait(pid, timeoutMs) -> { pid, status } (pid 0: timed out) | { errno, syscall }
Napi::Value Wait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pid = i32(info[0]);
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  long r;
  unsigned spins = 0;
  for (;;) {
    r = waitpid(pid, &status, __WALL | WNOHANG);
    if (r == -1) {
      if (errno == EINTR) continue;
      return SysErr(env, errno, "waitpid");
    }
    if (r > 0) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (now.tv_sec - start.tv_sec) * 1e3 + (now.tv_nsec - start.tv_nsec) / 1e6;
    if (ms >= timeout) { r = 0; break; }
    if (++spins < 200) { sched_yield(); continue; }
    struct timespec ts = {0, 200000};
    nanosleep(&ts, nullptr);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", num(env, (double)r));
  o.Set("status", num(env, status));
  return o;
}

// getRegs(pid, buf[216]) -> 0 | { errno, syscall }
Napi::Value GetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_GETREGS, i32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

Napi::Value SetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_SETREGS, i32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// getRegset(pid, type, buf) -> bytes filled | { errno, syscall }
Napi::Value GetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  if (sys_ptrace(PTRACE_GETREGSET, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)&iov) < 0) return SysErr(info.Env(), errno, "ptrace");
  return num(info.Env(), (double)iov.iov_len);
}

Napi::Value SetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  return Result(info.Env(), sys_ptrace(PTRACE_SETREGSET, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)&iov), "ptrace");
}

// getSigmask(pid) -> bigint | { errno, syscall }
Napi::Value GetSigmask(const Napi::CallbackInfo &info) {
  uint64_t mask = 0;
  long r = sys_ptrace(PTRACE_GETSIGMASK, i32(info[0]), sizeof(mask), (uint64_t)(uintptr_t)&mask);
  if (r < 0) return SysErr(info.Env(), errno, "ptrace");
  return Napi::BigInt::New(info.Env(), mask);
}

// peekSiginfo(pid, shared, offset, buf) -> count of 128-byte siginfos | { errno, syscall }
Napi::Value PeekSiginfo(const Napi::CallbackInfo &info) {
  auto b = info[3].As<Napi::Buffer<uint8_t>>();
  struct ptrace_peeksiginfo_args a;
  a.off = (uint64_t)i32(info[2]);
  a.flags = info[1].ToBoolean() ? PTRACE_PEEKSIGINFO_SHARED : 0;
  a.nr = (int32_t)(b.Length() / 128);
  return Result(info.Env(), sys_ptrace(PTRACE_PEEKSIGINFO, i32(info[0]), (uint64_t)(uintptr_t)&a, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// rseqConfig(pid, buf[32]) -> bytes | { errno, syscall }
Napi::Value RseqConfig(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  return Result(info.Env(), sys_ptrace(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, i32(info[0]), b.Length(), (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// peek(pid, addr) -> bigint word | { errno, syscall }
Napi::Value Peek(const Napi::CallbackInfo &info) {
  uint64_t word = 0;
  long r = sys_ptrace(PTRACE_PEEKDATA, i32(info[0]), u64(info[1]), (uint64_t)(uintptr_t)&word);
  if (r < 0) return SysErr(info.Env(), errno, "ptrace");
  return Napi::BigInt::New(info.Env(), word);
}

// poke(pid, addr, word) -> 0 | { errno, syscall }
Napi::Value Poke(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_POKEDATA, i32(info[0]), u64(info[1]), u64(info[2])), "ptrace");
}

// vmRead(pid, addr, buf, off, len) -> bytes | { errno, syscall }
Napi::Value VmRead(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  size_t off = (size_t)u64(info[3]), len = (size_t)u64(info[4]);
  if (off > b.Length() || len > b.Length() - off) return SysErr(info.Env(), EINVAL, "process_vm_readv");
  struct iovec local = {b.Data() + off, len};
  struct iovec remote = {(void *)(uintptr_t)u64(info[1]), len};
  return Result(info.Env(), process_vm_readv(i32(info[0]), &local, 1, &remote, 1, 0), "process_vm_readv");
}

Napi::Value VmWrite(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  size_t off = (size_t)u64(info[3]), len = (size_t)u64(info[4]);
  if (off > b.Length() || len > b.Length() - off) return SysErr(info.Env(), EINVAL, "process_vm_writev");
  struct iovec local = {b.Data() + off, len};
  struct iovec remote = {(void *)(uintptr_t)u64(info[1]), len};
  return Result(info.Env(), process_vm_writev(i32(info[0]), &local, 1, &remote, 1, 0), "process_vm_writev");
}

// mapShared(fd, len) -> Buffer over a MAP_SHARED mapping (unmapped when collected) | { errno, syscall }
Napi::Value MapShared(const Napi::CallbackInfo &info) {
  size_t len = (size_t)u64(info[1]);
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, i32(info[0]), 0);
  if (p == MAP_FAILED) return SysErr(info.Env(), errno, "mmap");
  return Napi::Buffer<uint8_t>::New(info.Env(), (uint8_t *)p, len,
                                    [len](Napi::Env, uint8_t *d) { munmap(d, len); });
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
  return num(info.Env(), v);
}

// tgkill(tgid, tid, sig) -> 0 | { errno, syscall }
Napi::Value Tgkill(const Napi::CallbackInfo &info) {
  return Result(info.Env(), syscall(SYS_tgkill, i32(info[0]), i32(info[1]), i32(info[2])), "tgkill");
}

// getThreadArea(pid, index, buf[16]) -> 0 | { errno, syscall } (struct user_desc)
Napi::Value GetThreadArea(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 16) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_GET_THREAD_AREA, i32(info[0]), (uint64_t)i32(info[1]), (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("seize", Napi::Function::New(env, Seize));
  exports.Set("interrupt", Napi::Function::New(env, Interrupt));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("cont", Napi::Function::New(env, Cont));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getRegset", Napi::Function::New(env, GetRegset));
  exports.Set("setRegset", Napi::Function::New(env, SetRegset));
  exports.Set("getSigmask", Napi::Function::New(env, GetSigmask));
  exports.Set("peekSiginfo", Napi::Function::New(env, PeekSiginfo));
  exports.Set("rseqConfig", Napi::Function::New(env, RseqConfig));
  exports.Set("peek", Napi::Function::New(env, Peek));
  exports.Set("poke", Napi::Function::New(env, Poke));
  exports.Set("vmRead", Napi::Function::New(env, VmRead));
  exports.Set("vmWrite", Napi::Function::New(env, VmWrite));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("spawnDetached", Napi::Function::New(env, SpawnDetached));
  exports.Set("getThreadArea", Napi::Function::New(env, GetThreadArea));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill));
  return exports;
}

}  // namespace

NODE_API_MODULE(parasite, Init)
