// Private to the @crtools/kerndat addon: how its source files meet. Each file holds one probe
// (or one piece of machinery) and adds its functions to the module's exports; init.cc calls
// them all. Every forked child runs only raw system calls (it never returns into JavaScript)
// and is reaped here, with its own timeout.
// A failed system call comes back as { errno, syscall } (crtools::SysErr); TypeScript decides
// what it means. What a probe measures (the errno of each ptrace request a tracer tries, how
// a probe child ended) is data, not a failure: it comes back as plain fields.
#ifndef CRTOOLS_KERNDAT_H
#define CRTOOLS_KERNDAT_H

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "crtools-napi.h"

namespace crtools::kerndat {

// Raw syscall that returns -errno instead of touching errno (safe in a child).
inline long rawsys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long r = syscall(nr, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}

// A probe child's exit when mount(2) does not know the filesystem type (ENODEV):
// the kernel lacks it, which is an answer, not a failed probe.
constexpr int NO_SUCH_FS = 64;

[[noreturn]] inline void child_exit(int code) {
  syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

// A JavaScript argument as a 64-bit integer: bigints, numbers, booleans, and Buffers (their address).
inline uint64_t arg_u64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    Napi::BigInt b = v.As<Napi::BigInt>();
    int64_t s = b.Int64Value(&lossless);
    if (lossless) return (uint64_t)s;
    return b.Uint64Value(&lossless);
  }
  if (v.IsNumber()) return (uint64_t)v.As<Napi::Number>().Int64Value();
  if (v.IsBuffer()) return (uint64_t)(uintptr_t)v.As<Napi::Buffer<uint8_t>>().Data();
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  return 0;
}

// ---- forked children (children.cc)

int64_t now_ms();
// waitpid with a deadline (WNOHANG polling). Returns pid, 0 on timeout, -errno.
pid_t wait_deadline(pid_t pid, int *status, int flags, int64_t deadline);
void kill_and_reap(pid_t pid);
// { pid, timedOut, exited, code, signal } of a reaped (or timed-out) child
Napi::Object status_object(Napi::Env env, pid_t pid, int status, bool timed_out);

// ---- fork probe children that need more than a few lines (each exits with its answer)

[[noreturn]] void child_overlayfs_maps(const char *dir);  // mounts.cc
[[noreturn]] void child_autofs(const char *dir);          // mounts.cc
[[noreturn]] void child_link_nsid();                      // netlink.cc

using crtools::Export;

void AddSyscall(Napi::Object exports);       // syscall.cc: raw syscall(), addressOf
void AddPtraceProbe(Napi::Object exports);   // ptrace_probe.cc: what a tracer can do
void AddForkProbe(Napi::Object exports);     // fork_probe.cc: one child routine, how it ended
void AddClone3Probe(Napi::Object exports);   // clone3_probe.cc: clone3 with set_tid
void AddVdsoProbe(Napi::Object exports);     // vdso_probe.cc: a moved [vdso] in maps

}  // namespace crtools::kerndat

#endif
