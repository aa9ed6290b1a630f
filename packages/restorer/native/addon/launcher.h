// Private to the restorer's launcher addon: how its source files meet. Each file handles one
// step of the launch and adds its functions to the module's exports; init.cc calls them all.
// Failures come back as { errno, syscall } objects (crtools::SysErr); TypeScript makes the errors.
#ifndef CRTOOLS_LAUNCHER_H
#define CRTOOLS_LAUNCHER_H

#include <napi.h>

#include <stdint.h>

#include "crtools-napi.h"

namespace crtools::launcher {

inline uint64_t BigU64(const Napi::Value &v) {
  bool lossless;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

using crtools::Export;

void AddLaunch(Napi::Object exports);  // launch.cc: map blob and plan, start the root, go, wait
void AddFinish(Napi::Object exports);  // finish.cc: trace every thread out of the blob, detach
void AddShmem(Napi::Object exports);   // shmem.cc: shared anonymous areas the tasks map
void AddPages(Napi::Object exports);   // pages.cc: the launcher's share of the page copying

}  // namespace crtools::launcher

#endif
