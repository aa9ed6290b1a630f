// Private to the @crtools/parasite addon: how its source files meet. Each file handles one
// concern and adds its functions to the module's exports; init.cc calls them all.
// Every function is synchronous and must be called from the JS main thread: a tracee belongs
// to the thread that seized it. Failures come back as { errno, syscall } objects
// (crtools::SysErr); TypeScript makes the errors.
#ifndef CRTOOLS_PARASITE_H
#define CRTOOLS_PARASITE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <napi.h>

#include <cerrno>
#include <cstdint>

#include "crtools-napi.h"

namespace crtools::parasite {

using crtools::I32;
using crtools::Num;
using crtools::U64;

// r from a call that returns -1 with errno on failure: r itself, or { errno, syscall }
inline Napi::Value Result(Napi::Env env, long r, const char *syscall) {
  if (r < 0) return SysErr(env, errno, syscall);
  return Num(env, (double)r);
}

using crtools::Export;

void AddPtrace(Napi::Object exports);  // ptrace.cc: ptrace requests on a seized thread
void AddMemory(Napi::Object exports);  // memory.cc: process_vm_readv/writev, a shared mapping
void AddTasks(Napi::Object exports);   // tasks.cc: waiting for stops, tgkill, a detached spawn

}  // namespace crtools::parasite

#endif
