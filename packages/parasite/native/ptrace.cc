// @crtools/parasite: ptrace(2) requests on a seized thread: seize, interrupt, continue, detach,
// registers, signal state, rseq configuration, word peeks and pokes.
#include "parasite.h"

#include <cerrno>
#include <cstdint>
#include <linux/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

namespace {

using namespace crtools::parasite;
using crtools::SysErr;

// ptrace(2) as the kernel has it (PEEKDATA stores the word at *data); -1 with errno on failure
long sys_ptrace(long req, long pid, uint64_t addr, uint64_t data) { return syscall(SYS_ptrace, req, pid, addr, data); }

// seize(pid, options) -> 0 | { errno, syscall }
Napi::Value Seize(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_SEIZE, I32(info[0]), 0, U64(info[1])), "ptrace");
}

Napi::Value Interrupt(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_INTERRUPT, I32(info[0]), 0, 0), "ptrace");
}

// detach(pid, sig) -> 0 | { errno, syscall }
Napi::Value Detach(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_DETACH, I32(info[0]), 0, (uint64_t)I32(info[1])), "ptrace");
}

// cont(pid, sig) -> 0 | { errno, syscall }
Napi::Value Cont(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_CONT, I32(info[0]), 0, (uint64_t)I32(info[1])), "ptrace");
}

// syscallStep(pid, sig) -> 0 | { errno, syscall } (PTRACE_SYSCALL: run to the next syscall entry or exit)
Napi::Value SyscallStep(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_SYSCALL, I32(info[0]), 0, (uint64_t)I32(info[1])), "ptrace");
}

// singleStep(pid, sig) -> 0 | { errno, syscall } (PTRACE_SINGLESTEP: one instruction, then a SIGTRAP stop)
Napi::Value SingleStep(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_SINGLESTEP, I32(info[0]), 0, (uint64_t)I32(info[1])), "ptrace");
}

// listen(pid) -> 0 | { errno, syscall } (leave a group-stopped tracee stopped but notifiable)
Napi::Value Listen(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_LISTEN, I32(info[0]), 0, 0), "ptrace");
}

// setOptions(pid, options) -> 0 | { errno, syscall } (PTRACE_SETOPTIONS, e.g. PTRACE_O_SUSPEND_SECCOMP)
Napi::Value SetOptions(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_SETOPTIONS, I32(info[0]), 0, U64(info[1])), "ptrace");
}

// seccompFilter(pid, index, buf) -> instructions (8 bytes each) copied into buf | { errno, syscall }
// (PTRACE_SECCOMP_GET_FILTER: index 0 is the oldest filter of the thread's chain; ENOENT past
// the newest. A buf too small for the filter gets nothing: the caller passes BPF_MAXINSNS * 8.)
Napi::Value SeccompFilter(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 4096 * 8) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(0x420c /* PTRACE_SECCOMP_GET_FILTER */, I32(info[0]), (uint64_t)I32(info[1]), (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// seccompMetadata(pid, index) -> flags of that filter (SECCOMP_FILTER_FLAG_LOG) | { errno, syscall }
Napi::Value SeccompMetadata(const Napi::CallbackInfo &info) {
  struct {
    uint64_t filter_off, flags;
  } meta = {(uint64_t)I32(info[1]), 0};
  long r = sys_ptrace(0x420d /* PTRACE_SECCOMP_GET_METADATA */, I32(info[0]), sizeof(meta), (uint64_t)(uintptr_t)&meta);
  if (r < 0) return SysErr(info.Env(), errno, "ptrace");
  return Num(info.Env(), (double)meta.flags);
}

// getRegs(pid, buf[216]) -> 0 | { errno, syscall }
Napi::Value GetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_GETREGS, I32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

Napi::Value SetRegs(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < sizeof(struct user_regs_struct)) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_SETREGS, I32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// getRegset(pid, type, buf) -> bytes filled | { errno, syscall }
Napi::Value GetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  if (sys_ptrace(PTRACE_GETREGSET, I32(info[0]), (uint64_t)I32(info[1]), (uint64_t)(uintptr_t)&iov) < 0) return SysErr(info.Env(), errno, "ptrace");
  return Num(info.Env(), (double)iov.iov_len);
}

Napi::Value SetRegset(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {b.Data(), b.Length()};
  return Result(info.Env(), sys_ptrace(PTRACE_SETREGSET, I32(info[0]), (uint64_t)I32(info[1]), (uint64_t)(uintptr_t)&iov), "ptrace");
}

// getSigmask(pid) -> bigint | { errno, syscall }
Napi::Value GetSigmask(const Napi::CallbackInfo &info) {
  uint64_t mask = 0;
  long r = sys_ptrace(PTRACE_GETSIGMASK, I32(info[0]), sizeof(mask), (uint64_t)(uintptr_t)&mask);
  if (r < 0) return SysErr(info.Env(), errno, "ptrace");
  return Napi::BigInt::New(info.Env(), mask);
}

// setSigmask(pid, mask) -> 0 | { errno, syscall }
Napi::Value SetSigmask(const Napi::CallbackInfo &info) {
  bool lossless = false;
  uint64_t mask = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  return Result(info.Env(), sys_ptrace(PTRACE_SETSIGMASK, I32(info[0]), sizeof(mask), (uint64_t)(uintptr_t)&mask), "ptrace");
}

// peekSiginfo(pid, shared, offset, buf) -> count of 128-byte siginfos | { errno, syscall }
Napi::Value PeekSiginfo(const Napi::CallbackInfo &info) {
  auto b = info[3].As<Napi::Buffer<uint8_t>>();
  struct ptrace_peeksiginfo_args a;
  a.off = (uint64_t)I32(info[2]);
  a.flags = info[1].ToBoolean() ? PTRACE_PEEKSIGINFO_SHARED : 0;
  a.nr = (int32_t)(b.Length() / 128);
  return Result(info.Env(), sys_ptrace(PTRACE_PEEKSIGINFO, I32(info[0]), (uint64_t)(uintptr_t)&a, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// getSiginfo(pid, buf[128]) -> 0 | { errno, syscall } (PTRACE_GETSIGINFO: the siginfo of the signal of a signal-delivery-stop)
Napi::Value GetSiginfo(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 128) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_GETSIGINFO, I32(info[0]), 0, (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// rseqConfig(pid, buf[32]) -> bytes | { errno, syscall }
Napi::Value RseqConfig(const Napi::CallbackInfo &info) {
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  return Result(info.Env(), sys_ptrace(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, I32(info[0]), b.Length(), (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

// peek(pid, addr) -> bigint word | { errno, syscall }
Napi::Value Peek(const Napi::CallbackInfo &info) {
  uint64_t word = 0;
  long r = sys_ptrace(PTRACE_PEEKDATA, I32(info[0]), U64(info[1]), (uint64_t)(uintptr_t)&word);
  if (r < 0) return SysErr(info.Env(), errno, "ptrace");
  return Napi::BigInt::New(info.Env(), word);
}

// poke(pid, addr, word) -> 0 | { errno, syscall }
Napi::Value Poke(const Napi::CallbackInfo &info) {
  return Result(info.Env(), sys_ptrace(PTRACE_POKEDATA, I32(info[0]), U64(info[1]), U64(info[2])), "ptrace");
}

// getThreadArea(pid, index, buf[16]) -> 0 | { errno, syscall } (struct user_desc)
Napi::Value GetThreadArea(const Napi::CallbackInfo &info) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 16) return SysErr(info.Env(), EINVAL, "ptrace");
  return Result(info.Env(), sys_ptrace(PTRACE_GET_THREAD_AREA, I32(info[0]), (uint64_t)I32(info[1]), (uint64_t)(uintptr_t)b.Data()), "ptrace");
}

}  // namespace

void crtools::parasite::AddPtrace(Napi::Object exports) {
  Export(exports, "seize", Seize);
  Export(exports, "interrupt", Interrupt);
  Export(exports, "detach", Detach);
  Export(exports, "syscallStep", SyscallStep);
  Export(exports, "singleStep", SingleStep);
  Export(exports, "cont", Cont);
  Export(exports, "listen", Listen);
  Export(exports, "setOptions", SetOptions);
  Export(exports, "seccompFilter", SeccompFilter);
  Export(exports, "seccompMetadata", SeccompMetadata);
  Export(exports, "getRegs", GetRegs);
  Export(exports, "setRegs", SetRegs);
  Export(exports, "getRegset", GetRegset);
  Export(exports, "setRegset", SetRegset);
  Export(exports, "getSigmask", GetSigmask);
  Export(exports, "setSigmask", SetSigmask);
  Export(exports, "peekSiginfo", PeekSiginfo);
  Export(exports, "getSiginfo", GetSiginfo);
  Export(exports, "rseqConfig", RseqConfig);
  Export(exports, "peek", Peek);
  Export(exports, "poke", Poke);
  Export(exports, "getThreadArea", GetThreadArea);
}
