// The restorer's launcher: shared anonymous areas whose shmem objects the restored tasks map through
// /proc/<launcher pid>/map_files.
#include "launcher.h"

#include <errno.h>
#include <sys/mman.h>

namespace {

using namespace crtools::launcher;
using crtools::SysErr;

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

}  // namespace

void crtools::launcher::AddShmem(Napi::Object exports) {
  Export(exports, "sharedAnon", SharedAnon);
  Export(exports, "unmap", Unmap);
}
