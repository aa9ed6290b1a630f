// @crtools/sys: a task's memory as the kernel describes it: the PAGEMAP_SCAN ioctl on a pagemap
// descriptor, and whether this kernel installs guard regions (MADV_GUARD_INSTALL).
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// The kernel's struct pm_scan_arg and struct page_region (include/uapi/linux/fs.h, 6.7+); the
// names are the kernel's field names, the constants its ioctl number and advice value.
struct ScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
struct Region {
  uint64_t start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, ScanArg);
constexpr int kMadvGuardInstall = 102;

// The kernel's struct uffdio_api and uffdio_register / uffdio_range (include/uapi/linux/userfaultfd.h).
struct UffdioApi {
  uint64_t api, features, ioctls;
};
struct UffdioRange {
  uint64_t start, len;
};
struct UffdioRegister {
  UffdioRange range;
  uint64_t mode, ioctls;
};
constexpr unsigned long kUffdioApi = _IOWR(0xAA, 0x3F, UffdioApi);
constexpr unsigned long kUffdioRegister = _IOWR(0xAA, 0x00, UffdioRegister);
constexpr unsigned long kUffdioUnregister = _IOR(0xAA, 0x01, UffdioRange);
constexpr uint64_t kUffdApi = 0xAA;

// pagemapScan(fd, start, end, flags, categoryInverted, categoryMask, anyofMask, returnMask,
// maxPages, vecLen) -> { regions: Buffer (3 u64 each), walkEnd: bigint } | { errno, syscall }:
// one PAGEMAP_SCAN call; the caller goes on from walkEnd while it is below end
Napi::Value PagemapScan(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t vecLen = U64(info[9]);
  std::vector<Region> vec(vecLen ? vecLen : 1);
  ScanArg a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.start = U64(info[1]);
  a.end = U64(info[2]);
  a.flags = U64(info[3]);
  a.category_inverted = U64(info[4]);
  a.category_mask = U64(info[5]);
  a.category_anyof_mask = U64(info[6]);
  a.return_mask = U64(info[7]);
  a.max_pages = U64(info[8]);
  a.vec = (uint64_t)(uintptr_t)vec.data();
  a.vec_len = vecLen;
  long n = ioctl(I32(info[0]), kPagemapScan, &a);
  if (n < 0) return SysErr(env, errno, "ioctl");
  auto out = Napi::Buffer<uint8_t>::Copy(env, (const uint8_t *)vec.data(), (size_t)n * sizeof(Region));
  Napi::Object o = Napi::Object::New(env);
  o.Set("regions", out);
  o.Set("walkEnd", Napi::BigInt::New(env, a.walk_end));
  return o;
}

// guardProbe() -> 0 | { errno, syscall }: MADV_GUARD_INSTALL on a page of a fresh private
// anonymous mapping of this process (unmapped again)
Napi::Value GuardProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  long page = sysconf(_SC_PAGESIZE);
  void *p = mmap(nullptr, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return SysErr(env, errno, "mmap");
  int r = madvise(p, (size_t)page, kMadvGuardInstall);
  int e = errno;
  munmap(p, (size_t)page);
  if (r < 0) return SysErr(env, e, "madvise");
  return Num(env, 0);
}

// readMapped(fd, len) -> Buffer | { errno, syscall }: the first len bytes of what fd maps (a
// shared read-only mapping of this process, unmapped again): a packet socket's rings, which no
// read(2) gives
Napi::Value ReadMapped(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  size_t len = (size_t)U64(info[1]);
  void *p = mmap(nullptr, len, PROT_READ, MAP_SHARED, I32(info[0]), 0);
  if (p == MAP_FAILED) return SysErr(env, errno, "mmap");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t *>(p), len);
  munmap(p, len);
  return out;
}

// uffdApi(fd, features) -> features granted | { errno, syscall }: the UFFDIO_API handshake on a
// userfaultfd (any holder of the descriptor may make it)
Napi::Value UffdApi(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UffdioApi a{kUffdApi, U64(info[1]), 0};
  if (ioctl(I32(info[0]), kUffdioApi, &a) < 0) return SysErr(env, errno, "ioctl");
  return Napi::BigInt::New(env, a.features);
}

// uffdRegister(fd, start, len, mode) -> 0 | { errno, syscall }: UFFDIO_REGISTER of [start,
// start+len) of the userfaultfd's own mm (the task that created it), in `mode` (MISSING 1, WP 2)
Napi::Value UffdRegister(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UffdioRegister r{{U64(info[1]), U64(info[2])}, U64(info[3]), 0};
  if (ioctl(I32(info[0]), kUffdioRegister, &r) < 0) return SysErr(env, errno, "ioctl");
  return Num(env, 0);
}

// uffdUnregister(fd, start, len) -> 0 | { errno, syscall }
Napi::Value UffdUnregister(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UffdioRange r{U64(info[1]), U64(info[2])};
  if (ioctl(I32(info[0]), kUffdioUnregister, &r) < 0) return SysErr(env, errno, "ioctl");
  return Num(env, 0);
}

// The kernel's struct uffdio_copy and uffdio_zeropage, and a lazy-pages daemon's ioctls.
struct UffdioCopy {
  uint64_t dst, src, len, mode;
  int64_t copy;
};
struct UffdioZeropage {
  UffdioRange range;
  uint64_t mode;
  int64_t zeropage;
};
constexpr unsigned long kUffdioCopy = _IOWR(0xAA, 0x03, UffdioCopy);
constexpr unsigned long kUffdioZeropage = _IOWR(0xAA, 0x04, UffdioZeropage);

// uffdRead(fd, max) -> Buffer (whole 32-byte uffd_msg records; empty: end of file) | null
// (nothing queued) | { errno, syscall }: never waits (the descriptor is O_NONBLOCK)
Napi::Value UffdRead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int max = I32(info[1]);
  std::vector<uint8_t> buf((size_t)(max > 0 ? max : 1) * 32);
  ssize_t r;
  do r = read(I32(info[0]), buf.data(), buf.size());
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN) return env.Null();
    return SysErr(env, errno, "read");
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), (size_t)r);
}

// uffdCopy(fd, dst, src Buffer, dontWake) -> bytes copied (a short count: the kernel stopped
// there, e.g. EAGAIN while the layout changes) | { errno, syscall }: UFFDIO_COPY of the whole
// buffer to dst in the userfaultfd's mm
Napi::Value UffdCopy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> src = info[2].As<Napi::Buffer<uint8_t>>();
  UffdioCopy c{U64(info[1]), (uint64_t)(uintptr_t)src.Data(), (uint64_t)src.Length(), info[3].ToBoolean() ? 1ULL : 0ULL, 0};
  if (ioctl(I32(info[0]), kUffdioCopy, &c) == 0) return Num(env, (double)src.Length());
  int e = errno;
  if (c.copy > 0) return Num(env, (double)c.copy);
  return SysErr(env, e, "ioctl");
}

// uffdZero(fd, start, len) -> bytes zeroed | { errno, syscall }: UFFDIO_ZEROPAGE
Napi::Value UffdZero(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UffdioZeropage z{{U64(info[1]), U64(info[2])}, 0, 0};
  if (ioctl(I32(info[0]), kUffdioZeropage, &z) == 0) return Num(env, (double)U64(info[2]));
  int e = errno;
  if (z.zeropage > 0) return Num(env, (double)z.zeropage);
  return SysErr(env, e, "ioctl");
}

// pollIn(fds, timeoutMs) -> revents per fd | { errno, syscall }: poll(2) for POLLIN on each
Napi::Value PollIn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<struct pollfd> p(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) p[i] = {I32(a.Get(i)), POLLIN, 0};
  int r;
  do r = poll(p.data(), p.size(), I32(info[1]));
  while (r < 0 && errno == EINTR);
  if (r < 0) return SysErr(env, errno, "poll");
  Napi::Array out = Napi::Array::New(env, p.size());
  for (uint32_t i = 0; i < p.size(); i++) out.Set(i, Num(env, p[i].revents));
  return out;
}

}  // namespace

void crtools::sys::AddMemory(Napi::Object exports) {
  Export(exports, "pagemapScan", PagemapScan);
  Export(exports, "guardProbe", GuardProbe);
  Export(exports, "readMapped", ReadMapped);
  Export(exports, "uffdApi", UffdApi);
  Export(exports, "uffdRegister", UffdRegister);
  Export(exports, "uffdUnregister", UffdUnregister);
  Export(exports, "uffdRead", UffdRead);
  Export(exports, "uffdCopy", UffdCopy);
  Export(exports, "uffdZero", UffdZero);
  Export(exports, "pollIn", PollIn);
}
