// @crtools/parasite: a tracee's memory: process_vm_readv/writev into caller Buffers, and a
// shared mapping of an fd (the area the parasite and the dumper share).
#include "parasite.h"

#include <cerrno>
#include <cstdint>
#include <sys/mman.h>
#include <sys/uio.h>

namespace {

using namespace crtools::parasite;
using crtools::SysErr;

// process_vm_readv and process_vm_writev: one local and one remote iovec of the same length
using VmCopy = ssize_t (*)(pid_t, const struct iovec *, unsigned long, const struct iovec *, unsigned long, unsigned long);

// (pid, addr, buf, off, len) -> bytes moved between buf[off, off+len) and the task at addr |
// { errno, syscall }
Napi::Value VmTransfer(const Napi::CallbackInfo &info, VmCopy copy, const char *syscall) {
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  size_t off = (size_t)U64(info[3]), len = (size_t)U64(info[4]);
  if (off > b.Length() || len > b.Length() - off) return SysErr(info.Env(), EINVAL, syscall);
  struct iovec local = {b.Data() + off, len};
  struct iovec remote = {(void *)(uintptr_t)U64(info[1]), len};
  return Result(info.Env(), copy(I32(info[0]), &local, 1, &remote, 1, 0), syscall);
}

// vmRead(pid, addr, buf, off, len) -> bytes read into buf | { errno, syscall }
Napi::Value VmRead(const Napi::CallbackInfo &info) { return VmTransfer(info, process_vm_readv, "process_vm_readv"); }

// vmWrite(pid, addr, buf, off, len) -> bytes written from buf | { errno, syscall }
Napi::Value VmWrite(const Napi::CallbackInfo &info) { return VmTransfer(info, process_vm_writev, "process_vm_writev"); }

// mapShared(fd, len) -> Buffer over a MAP_SHARED mapping (unmapped when collected) | { errno, syscall }
Napi::Value MapShared(const Napi::CallbackInfo &info) {
  size_t len = (size_t)U64(info[1]);
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, I32(info[0]), 0);
  if (p == MAP_FAILED) return SysErr(info.Env(), errno, "mmap");
  return Napi::Buffer<uint8_t>::New(info.Env(), (uint8_t *)p, len,
                                    [len](Napi::Env, uint8_t *d) { munmap(d, len); });
}

}  // namespace

void crtools::parasite::AddMemory(Napi::Object exports) {
  Export(exports, "vmRead", VmRead);
  Export(exports, "vmWrite", VmWrite);
  Export(exports, "mapShared", MapShared);
}
