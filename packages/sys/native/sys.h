// Private to the @crtools/sys addon: how its source files meet. Each file handles one
// concern and adds its functions to the module's exports; init.cc calls them all.
// Failures come back as { errno, syscall } objects (crtools::SysErr); TypeScript makes the errors.
#ifndef CRTOOLS_SYS_H
#define CRTOOLS_SYS_H

#include <napi.h>

#include <cstdint>

#include "crtools-napi.h"

namespace crtools::sys {

// argument conversions (the TypeScript wrappers check types before the call)
inline int I32(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

inline uint64_t U64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return (uint64_t)v.As<Napi::Number>().Int64Value();
}

inline Napi::Value Num(Napi::Env env, double d) { return Napi::Number::New(env, d); }

using crtools::Export;

void AddHandles(Napi::Object exports);  // handles.cc: kernel file handles
void AddProcess(Napi::Object exports);  // process.cc: kcmp, clocks
void AddPipes(Napi::Object exports);    // pipes.cc: pipes, splice, tee, close
void AddSockets(Napi::Object exports);  // sockets.cc: sock_diag, a task's socket seen through pidfd_getfd
void AddCpu(Napi::Object exports);      // cpu.cc: cpuid, xgetbv

}  // namespace crtools::sys

#endif
