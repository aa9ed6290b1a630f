// The restorer's launcher: the shared memory objects the restored tasks map and open. Shared
// anonymous areas, mapped through /proc/<launcher pid>/map_files; memfds, whose descriptors
// here the tasks open again (and map) through /proc/<launcher pid>/fd.
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <string>

namespace {

using namespace crtools::launcher;
using crtools::SysErr;

// sharedAnon(size, flags?) -> address (bigint) | { errno, syscall }: a MAP_SHARED|MAP_ANONYMOUS
// area (flags: MAP_HUGETLB and its size bits, for huge pages), whose object the restored tasks
// map through /proc/<this pid>/map_files
Napi::Value SharedAnon(const Napi::CallbackInfo &info) {
  uint64_t size = BigU64(info[0]);
  int extra = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | extra, -1, 0);
  if (p == MAP_FAILED) return SysErr(info.Env(), errno, "mmap");
  return Napi::BigInt::New(info.Env(), (uint64_t)(uintptr_t)p);
}

// mapShared(fd, size) -> address (bigint) | { errno, syscall }: a read-write MAP_SHARED mapping of
// descriptor fd (a memfd on huge pages, whose contents only a mapping can write)
Napi::Value MapShared(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t size = BigU64(info[1]);
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return SysErr(info.Env(), errno, "mmap");
  return Napi::BigInt::New(info.Env(), (uint64_t)(uintptr_t)p);
}

// unmap(address, size) -> 0 | { errno, syscall }: drop an area sharedAnon made
Napi::Value Unmap(const Napi::CallbackInfo &info) {
  uint64_t addr = BigU64(info[0]), size = BigU64(info[1]);
  if (munmap((void *)(uintptr_t)addr, size) != 0) return SysErr(info.Env(), errno, "munmap");
  return Napi::Number::New(info.Env(), 0);
}

// memfdCreate(name, flags) -> fd | { errno, syscall }: memfd_create(2) (flags: MFD_*; the
// caller adds MFD_CLOEXEC to keep it out of children)
Napi::Value MemfdCreate(const Napi::CallbackInfo &info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned flags = info[1].As<Napi::Number>().Uint32Value();
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) return SysErr(info.Env(), errno, "memfd_create");
  return Napi::Number::New(info.Env(), fd);
}

// addSeals(fd, seals) -> F_GET_SEALS after | { errno, syscall }: fcntl(F_ADD_SEALS)
Napi::Value AddSeals(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int seals = info[1].As<Napi::Number>().Int32Value();
  if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0) return SysErr(info.Env(), errno, "fcntl");
  int now = fcntl(fd, F_GET_SEALS);
  if (now < 0) return SysErr(info.Env(), errno, "fcntl");
  return Napi::Number::New(info.Env(), now);
}

}  // namespace

void crtools::launcher::AddShmem(Napi::Object exports) {
  Export(exports, "sharedAnon", SharedAnon);
  Export(exports, "mapShared", MapShared);
  Export(exports, "unmap", Unmap);
  Export(exports, "memfdCreate", MemfdCreate);
  Export(exports, "addSeals", AddSeals);
}
